/// What an upstream offers, read from its EHLO reply (RFC 5321 §4.1.1.1: the first line
/// is the server's name and greeting, every later line is one extension keyword with its
/// parameters). Only the extensions the relay uses are kept.
public struct UpstreamCapabilities: Sendable, Equatable, CustomStringConvertible {
    /// RFC 3207.
    public var startTLS = false
    /// RFC 4954: mechanism names, upper-cased, in the order offered.
    public var authMechanisms: [String] = []
    /// RFC 1870: nil when SIZE is not offered; 0 when offered without a fixed limit.
    public var maxSize: Int?
    /// RFC 2920.
    public var pipelining = false
    /// RFC 6152.
    public var eightBitMIME = false
    /// RFC 6531.
    public var smtpUTF8 = false
    /// RFC 2034.
    public var enhancedStatusCodes = false

    /// No extensions: what a HELO-only server offers.
    public init() {}

    public init(ehloReply: SMTPReply) {
        for line in ehloReply.lines.dropFirst() {
            apply(line: line)
        }
    }

    public func offersAuth(_ mechanism: String) -> Bool {
        authMechanisms.contains(mechanism.uppercased())
    }

    public var description: String {
        var parts: [String] = []
        if startTLS { parts.append("STARTTLS") }
        if !authMechanisms.isEmpty { parts.append("AUTH " + authMechanisms.joined(separator: " ")) }
        if let maxSize { parts.append("SIZE \(maxSize)") }
        if pipelining { parts.append("PIPELINING") }
        if eightBitMIME { parts.append("8BITMIME") }
        if smtpUTF8 { parts.append("SMTPUTF8") }
        if enhancedStatusCodes { parts.append("ENHANCEDSTATUSCODES") }
        return parts.joined(separator: ", ")
    }

    private mutating func apply(line: String) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { $0.uppercased() }
        guard let keyword = words.first else { return }
        let parameters = words.dropFirst()
        switch keyword {
        case "STARTTLS": startTLS = true
        case "PIPELINING": pipelining = true
        case "8BITMIME": eightBitMIME = true
        case "SMTPUTF8": smtpUTF8 = true
        case "ENHANCEDSTATUSCODES": enhancedStatusCodes = true
        case "SIZE": maxSize = parameters.first.flatMap { Int($0) } ?? 0
        case "AUTH": addAuth(parameters)
        default:
            // Pre-RFC 4954 servers (old Exchange, Sendmail) advertise "AUTH=LOGIN PLAIN".
            if keyword.hasPrefix("AUTH=") {
                addAuth([String(keyword.dropFirst(5))] + parameters)
            }
        }
    }

    private mutating func addAuth(_ mechanisms: some Sequence<String>) {
        for mechanism in mechanisms where !mechanism.isEmpty && !authMechanisms.contains(mechanism) {
            authMechanisms.append(mechanism)
        }
    }
}
