/// One route the daemon has marked down, as `ROUTES` reports it: `smarthost status` and
/// `queue list` show it beside the messages waiting behind it.
public struct ControlRouteDown: Sendable, Equatable {
    /// The upstream, `host:port`.
    public var upstream: String
    public var downSeconds: Int64
    /// Until the next attempt on the route.
    public var retryInSeconds: Int64
    /// The last failure, as logged ("connect: Connection refused").
    public var error: String
    /// The orgs whose mail waits behind it (`-`: mail of no org), set only when another
    /// route has the same `upstream` (the same hosts with another org's credential): the
    /// credential itself is never named.
    public var orgs: [String]

    public init(upstream: String, downSeconds: Int64, retryInSeconds: Int64, error: String, orgs: [String] = []) {
        self.upstream = upstream
        self.downSeconds = downSeconds
        self.retryInSeconds = retryInSeconds
        self.error = error
        self.orgs = orgs
    }

    /// The route as `status` shows it: `upstream`, with its orgs when they tell it apart.
    public var label: String { Self.label(upstream, orgs: orgs) }

    static func label(_ name: String, orgs: [String]) -> String {
        guard !orgs.isEmpty else { return name }
        let names = orgs.map { $0 == "-" ? "no org" : $0 }
        return "\(name) (org\(names.count == 1 ? "" : "s") \(names.joined(separator: ", ")))"
    }

    /// Whether a queued message of `org` on the route named `route` waits behind this one.
    public func holds(route: String, org: String?) -> Bool {
        route == upstream && (orgs.isEmpty || orgs.contains(org ?? "-"))
    }

    /// One word of the one-line reply: `down=<upstream>,<down s>,<retry s>,<error>[,<org>…]`
    /// with the text fields percent-encoded, so neither spaces nor commas of an error can split it.
    public var word: String {
        "down=\(Self.encode(upstream)),\(downSeconds),\(retryInSeconds),\(Self.encode(error))"
            + orgs.map { "," + Self.encode($0) }.joined()
    }

    public static func words(_ routes: [ControlRouteDown]) -> String {
        routes.isEmpty ? "none" : routes.map(\.word).joined(separator: " ")
    }

    public static func parse(_ text: String) -> [ControlRouteDown] {
        text.split(separator: " ").compactMap { word in
            guard word.hasPrefix("down=") else { return nil }
            let parts = word.dropFirst(5).split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count >= 4, let down = Int64(parts[1]), let retry = Int64(parts[2]) else { return nil }
            return ControlRouteDown(upstream: decode(parts[0]), downSeconds: down, retryInSeconds: retry, error: decode(parts[3]),
                                    orgs: parts.dropFirst(4).map(decode))
        }
    }

    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") && byte != UInt8(ascii: ",") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = Array("0123456789ABCDEF")
                out += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), let high = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex),
               let low = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), low < utf8.endIndex,
               let value = UInt8(String(decoding: [utf8[high], utf8[low]], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index = utf8.index(after: low)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
