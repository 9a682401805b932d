/// One SMTP reply: the basic code, the RFC 3463 enhanced status code and the text.
/// Every reply the relay sends or receives is one of these, so a typed error can
/// carry exactly the reply it becomes on the wire.
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    /// Enhanced status code (RFC 3463), e.g. "5.1.1"; nil only for replies that take none
    /// (the greeting, and replies read from upstreams that do not send one).
    public var enhanced: String?
    /// Text lines; more than one gives a multi-line reply.
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String?, _ text: String) {
        self.code = code
        self.enhanced = enhanced
        self.lines = [text]
    }

    public init(code: Int, enhanced: String?, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public var isPositive: Bool { code >= 200 && code < 400 }
    public var isTransient: Bool { code >= 400 && code < 500 }
    public var isPermanent: Bool { code >= 500 }

    public var text: String { lines.joined(separator: " ") }

    /// "550 5.1.1 text" (first line only) — for logs and error messages.
    public var description: String {
        var s = String(code)
        if let enhanced { s += " " + enhanced }
        s += " " + text
        return s
    }

    /// The reply as it goes on the wire: CRLF line ends, "-" on every line but the last.
    public var wireBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for (index, line) in lines.enumerated() {
            out.append(contentsOf: String(code).utf8)
            out.append(index == lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            if let enhanced {
                out.append(contentsOf: enhanced.utf8)
                out.append(UInt8(ascii: " "))
            }
            out.append(contentsOf: line.utf8)
            out.append(13)
            out.append(10)
        }
        return out
    }
}
