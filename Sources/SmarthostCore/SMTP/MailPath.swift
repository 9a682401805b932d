/// A reverse-path or forward-path of MAIL FROM / RCPT TO (RFC 5321 §4.1.2):
/// `"<" [ A-d-l ":" ] Mailbox ">"`, the null path `<>` (MAIL only) or
/// `<Postmaster>` (RCPT only, §4.1.1.3). A source route (A-d-l) is accepted
/// and ignored, as §3.3 and Appendix C require.
public struct MailPath: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The local part as written on the wire: a dot-string, or a quoted string
    /// with its quotes (it is relayed upstream exactly as received).
    public let localPart: String
    /// A domain, or an address literal with its brackets (`[192.0.2.1]`,
    /// `[IPv6:2001:db8::1]`); empty for `<>` and `<Postmaster>`.
    public let domain: String

    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain
    }

    /// The null reverse-path `<>` (bounces and other notifications, §4.5.5).
    public static let null = MailPath(localPart: "", domain: "")

    public var isNull: Bool { localPart.isEmpty && domain.isEmpty }

    /// `<Postmaster>` without a domain (§4.1.1.3), matched case-insensitively.
    public var isPostmaster: Bool { domain.isEmpty && localPart.lowercased() == "postmaster" }

    /// The mailbox without angle brackets: `user@example.com`, `Postmaster`, or "".
    public var mailbox: String { domain.isEmpty ? localPart : localPart + "@" + domain }

    /// The path as written in SMTP: `<user@example.com>`.
    public var description: String { "<" + mailbox + ">" }

    /// Whether the path holds non-ASCII octets (needs SMTPUTF8 upstream, RFC 6531).
    public var isInternationalized: Bool {
        !localPart.utf8.allSatisfy { $0 < 0x80 } || !domain.utf8.allSatisfy { $0 < 0x80 }
    }

    // MARK: - Parameters of MAIL FROM

    /// RFC 6152 BODY= values.
    public enum BodyType: String, Equatable, Hashable, Sendable {
        case sevenBit = "7BIT"
        case eightBitMIME = "8BITMIME"
    }

    /// ESMTP parameters given with MAIL FROM.
    public struct Parameters: Equatable, Hashable, Sendable {
        /// RFC 1870 SIZE=; values too large for an `Int` read as `Int.max`
        /// (certainly over the limit, not a syntax error).
        public var size: Int?
        /// RFC 6152 BODY=; nil when not given.
        public var body: BodyType?
        /// RFC 6531 SMTPUTF8: addresses and headers may hold UTF-8.
        public var smtputf8: Bool

        public init(size: Int? = nil, body: BodyType? = nil, smtputf8: Bool = false) {
            self.size = size
            self.body = body
            self.smtputf8 = smtputf8
        }
    }
}

// MARK: - Parsing

extension MailPath {
    /// Where a path stands, which decides whether `<>` and `<Postmaster>` are allowed.
    public enum Role: Sendable {
        case reversePath   // MAIL FROM
        case forwardPath   // RCPT TO
    }

    public enum ParseError: Error, Equatable, Sendable {
        /// Not a valid path.
        case syntax
        /// Valid only with UTF-8, which was not allowed (RFC 6531 §3.4: 553 5.6.7).
        case needsSMTPUTF8
    }

    /// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the brackets.
    public static let maxPathLength = 256

    /// Parses `<...>` exactly (no surrounding spaces). With `utf8Allowed`,
    /// local part and domain may hold UTF-8 (RFC 6531 §3.3). With `localOnlyAllowed`, a
    /// bare local part (`<root>`) is a path with an empty domain, for the relay to qualify
    /// with its `hostname:` (Postfix's `strict_rfc821_envelopes = no`, `append_at_myorigin`):
    /// cron, mailx and PHP send them.
    public static func parse(_ bytes: ArraySlice<UInt8>, role: Role, utf8Allowed: Bool,
                             localOnlyAllowed: Bool = false) throws(ParseError) -> MailPath {
        guard bytes.count >= 2, bytes.count <= maxPathLength,
              bytes.first == Octet.less, bytes.last == Octet.greater else { throw .syntax }
        var inner = bytes.dropFirst().dropLast()
        if inner.isEmpty {
            guard role == .reversePath else { throw .syntax }
            return .null
        }
        if role == .forwardPath, inner.count == 10, inner.map(Octet.upper) == Array("POSTMASTER".utf8) {
            return MailPath(localPart: String(decoding: inner, as: UTF8.self), domain: "")
        }
        if inner.first == Octet.at {
            inner = try dropSourceRoute(inner)
        }
        let path = try parseMailbox(inner, localOnlyAllowed: localOnlyAllowed)
        if !utf8Allowed && path.isInternationalized { throw .needsSMTPUTF8 }
        return path
    }

    /// Drops `@one,@two:` (A-d-l ":"), after checking each hop is a domain.
    private static func dropSourceRoute(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> ArraySlice<UInt8> {
        guard let colon = bytes.firstIndex(of: Octet.colon) else { throw .syntax }
        for hop in bytes[..<colon].split(separator: Octet.comma, omittingEmptySubsequences: false) {
            guard hop.first == Octet.at, DomainSyntax.isDomain(hop.dropFirst(), utf8: true) else { throw .syntax }
        }
        return bytes[(colon + 1)...]
    }

    /// `Local-part "@" ( Domain / address-literal )`.
    private static func parseMailbox(_ bytes: ArraySlice<UInt8>, localOnlyAllowed: Bool) throws(ParseError) -> MailPath {
        let localEnd = try endOfLocalPart(bytes)
        if localOnlyAllowed, localEnd == bytes.endIndex {
            guard let localText = String(validating: bytes, as: UTF8.self) else { throw .syntax }
            return MailPath(localPart: localText, domain: "")
        }
        guard localEnd < bytes.endIndex, bytes[localEnd] == Octet.at else { throw .syntax }
        let local = bytes[..<localEnd]
        let domain = bytes[(localEnd + 1)...]
        let domainValid = domain.first == Octet.openBracket
            ? DomainSyntax.isAddressLiteral(domain)
            : DomainSyntax.isDomain(domain, utf8: true)
        guard domainValid else { throw .syntax }
        guard let localText = String(validating: local, as: UTF8.self),
              let domainText = String(validating: domain, as: UTF8.self) else { throw .syntax }
        return MailPath(localPart: localText, domain: domainText)
    }

    /// Index just past the local part: a Quoted-string or a Dot-string (§4.1.2).
    private static func endOfLocalPart(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> Int {
        if bytes.first == Octet.quote {
            return try endOfQuotedString(bytes)
        }
        let end = bytes.firstIndex(of: Octet.at) ?? bytes.endIndex
        let atoms = bytes[..<end].split(separator: Octet.dot, omittingEmptySubsequences: false)
        guard atoms.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isAtext) }) else { throw .syntax }
        return end
    }

    /// `DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE`.
    private static func endOfQuotedString(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> Int {
        var index = bytes.startIndex + 1
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == Octet.quote {
                return index + 1
            }
            if byte == Octet.backslash {
                index += 1
                guard index < bytes.endIndex, bytes[index] >= 32, bytes[index] != 127 else { throw .syntax }
            } else if byte < 32 || byte == 127 {
                throw .syntax   // qtextSMTP excludes controls (and UTF8-non-ascii is allowed, RFC 6531)
            }
            index += 1
        }
        throw .syntax
    }

    /// RFC 5322 atext, plus UTF8-non-ascii (RFC 6531 §3.3); the UTF-8 itself is
    /// validated when the path becomes a `String`.
    private static func isAtext(_ byte: UInt8) -> Bool {
        if Octet.isAlpha(byte) || Octet.isDigit(byte) || byte >= 0x80 { return true }
        switch byte {
        case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2F, 0x3D, 0x3F, 0x5E...0x60, 0x7B...0x7E:
            return true   // ! # $ % & ' * + - / = ? ^ _ ` { | } ~
        default:
            return false
        }
    }
}

// MARK: - Domains and address literals

extension MailPath {
    /// Syntax of `Domain` and `address-literal` (RFC 5321 §4.1.2, §4.1.3),
    /// shared with the HELO/EHLO argument.
    enum DomainSyntax {
        /// `sub-domain *("." sub-domain)`, labels of let-dig and inner hyphens,
        /// at most 63 octets each and 255 in all (§4.5.3.1.2). With `utf8`,
        /// octets of U-labels count as letters (RFC 6531 §3.3). HELO names also
        /// take `_`: hosts named `build_agent` are common on private networks.
        static func isDomain(_ bytes: ArraySlice<UInt8>, utf8: Bool, allowUnderscore: Bool = false) -> Bool {
            guard !bytes.isEmpty, bytes.count <= 255 else { return false }
            let isLetDig = { (b: UInt8) in
                Octet.isAlpha(b) || Octet.isDigit(b) || (utf8 && b >= 0x80) || (allowUnderscore && b == 0x5F)
            }
            for label in bytes.split(separator: Octet.dot, omittingEmptySubsequences: false) {
                guard let first = label.first, let last = label.last, label.count <= 63,
                      isLetDig(first), isLetDig(last),
                      label.allSatisfy({ isLetDig($0) || $0 == UInt8(ascii: "-") }) else { return false }
            }
            return true
        }

        /// `"[" ( IPv4-address-literal / IPv6-address-literal ) "]"`. General
        /// address literals need an IANA-registered tag and none but IPv6 exists.
        static func isAddressLiteral(_ bytes: ArraySlice<UInt8>) -> Bool {
            guard bytes.count >= 3, bytes.first == Octet.openBracket, bytes.last == Octet.closeBracket else { return false }
            let inner = bytes.dropFirst().dropLast()
            let tag = Array("IPV6:".utf8)
            if inner.count > tag.count, inner.prefix(tag.count).map(Octet.upper) == tag {
                return isIPv6(inner.dropFirst(tag.count))
            }
            return isIPv4(inner)
        }

        /// `Snum 3("." Snum)`, Snum = 1*3DIGIT with a value of 0–255.
        static func isIPv4(_ bytes: ArraySlice<UInt8>) -> Bool {
            let parts = bytes.split(separator: Octet.dot, omittingEmptySubsequences: false)
            return parts.count == 4 && parts.allSatisfy { part in
                (1...3).contains(part.count) && part.allSatisfy(Octet.isDigit)
                    && part.reduce(0) { $0 * 10 + Int($1 - 0x30) } <= 255
            }
        }

        /// IPv6-full, IPv6-comp, IPv6v4-full, IPv6v4-comp (§4.1.3): eight 16-bit
        /// groups, an IPv4 tail counting as two; `::` stands for at least two
        /// groups, so at most six others may be written with it.
        static func isIPv6(_ bytes: ArraySlice<UInt8>) -> Bool {
            let text = Array(bytes)
            guard let gap = (0..<max(0, text.count - 1)).first(where: { text[$0] == Octet.colon && text[$0 + 1] == Octet.colon }) else {
                return groupCount(text[...], ipv4Tail: true) == 8
            }
            let head = text[..<gap]
            let tail = text[(gap + 2)...]
            guard let headCount = groupCount(head, ipv4Tail: false),
                  let tailCount = groupCount(tail, ipv4Tail: true) else { return false }
            return headCount + tailCount <= 6
        }

        /// Groups written in `bytes` (an IPv4 tail counts two), nil when malformed.
        private static func groupCount(_ bytes: ArraySlice<UInt8>, ipv4Tail: Bool) -> Int? {
            if bytes.isEmpty { return 0 }
            let groups = bytes.split(separator: Octet.colon, omittingEmptySubsequences: false)
            var count = 0
            for (index, group) in groups.enumerated() {
                if ipv4Tail && index == groups.count - 1 && group.contains(Octet.dot) {
                    guard isIPv4(group) else { return nil }
                    count += 2
                } else {
                    guard (1...4).contains(group.count), group.allSatisfy(Octet.isHex) else { return nil }
                    count += 1
                }
            }
            return count
        }
    }
}

private typealias Octet = LineFramer.Octet
