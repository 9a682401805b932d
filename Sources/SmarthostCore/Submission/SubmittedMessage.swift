/// A message as `sendmail` reads it from a local program, made ready for SMTP:
/// - lines end in CRLF whatever the program wrote (LF, CRLF); a line of a single `.` ends
///   the input unless `-i`/`-oi` (sendmail's rule), and a leading mbox `From ` line goes;
/// - with `-t`, the recipients of `To:`, `Cc:` and `Bcc:`;
/// - `Bcc:` is removed (it must not reach the other recipients, RFC 5322 §3.6.3);
/// - `From:`, `Date:` and `Message-ID:` are added when missing (RFC 5322 §3.6: required,
///   and a Message-ID is expected), after the program's own fields;
/// - a message that starts with its body gets the empty line that ends the header.
public struct SubmittedMessage: Equatable, Sendable {
    /// The content with CRLF line ends, ready for DATA (not yet dot-stuffed).
    public var content: [UInt8]
    /// Addresses from `To:`, `Cc:`, `Bcc:` (with `-t`), in order.
    public var headerRecipients: [String]

    /// What the added fields say.
    public struct Defaults: Sendable {
        public var from: UpstreamFromAddress
        public var unixSeconds: Int
        /// For `Message-ID: <…@domain>`.
        public var domain: String
        /// Random, so two messages in the same second get different ids.
        public var uniqueToken: String

        public init(from: UpstreamFromAddress, unixSeconds: Int, domain: String, uniqueToken: String) {
            self.from = from
            self.unixSeconds = unixSeconds
            self.domain = domain
            self.uniqueToken = uniqueToken
        }
    }

    public init(input: [UInt8], ignoreDots: Bool, extractRecipients: Bool, defaults: Defaults) {
        var lines = Self.lines(of: input, ignoreDots: ignoreDots)
        if let first = lines.first, first.starts(with: Array("From ".utf8)) { lines.removeFirst() }
        let (fields, bodyStart, hasSeparator) = Self.header(of: lines)
        var recipients: [String] = []
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 32 + 256)
        var present = Set<String>()
        for field in fields {
            let name = field.name
            present.insert(name)
            if extractRecipients, ["to", "cc", "bcc"].contains(name) {
                recipients += AddressList.addresses(in: field.value)
            }
            if name == "bcc" { continue }
            for line in field.lines { out += line + [13, 10] }
        }
        if !present.contains("from") { out += UpstreamMessageRewriter.fromHeader(defaults.from) }
        if !present.contains("date") {
            out += Array("Date: \(ReceivedHeader.rfc5322Date(unixSeconds: defaults.unixSeconds))\r\n".utf8)
        }
        if !present.contains("message-id") {
            out += Array("Message-ID: <\(defaults.unixSeconds).\(defaults.uniqueToken)@\(defaults.domain)>\r\n".utf8)
        }
        out += [13, 10]
        let body = lines[(hasSeparator ? bodyStart + 1 : bodyStart)...]
        for line in body { out += line + [13, 10] }
        content = out
        headerRecipients = recipients
    }

    /// Input lines without their line ends (LF, or CR LF); a last line without one counts.
    static func lines(of input: [UInt8], ignoreDots: Bool) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = 0
        for index in input.indices where input[index] == 10 {
            lines.append(Array(input[start..<(index > start && input[index - 1] == 13 ? index - 1 : index)]))
            start = index + 1
        }
        if start < input.count { lines.append(Array(input[start...])) }
        if !ignoreDots, let dot = lines.firstIndex(of: [UInt8(ascii: ".")]) { lines.removeSubrange(dot...) }
        return lines
    }

    struct Field {
        var name: String
        var lines: [[UInt8]]
        /// The unfolded value after the colon.
        var value: String {
            var text = lines.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            if let colon = text.firstIndex(of: ":") { text = String(text[text.index(after: colon)...]) }
            return text
        }
    }

    /// The header fields, the index of the first line after them, and whether that line is
    /// the empty separator (otherwise the program started its body without one).
    static func header(of lines: [[UInt8]]) -> (fields: [Field], bodyStart: Int, hasSeparator: Bool) {
        var fields: [Field] = []
        for (index, line) in lines.enumerated() {
            if line.isEmpty { return (fields, index, true) }
            if let first = line.first, first == 32 || first == 9, !fields.isEmpty {
                fields[fields.count - 1].lines.append(line)
                continue
            }
            guard let name = fieldName(of: line) else { return (fields, index, false) }
            fields.append(Field(name: name, lines: [line]))
        }
        return (fields, lines.count, false)
    }

    /// RFC 5322 §3.6.8: printable ASCII but the colon, then `:`; lower-cased.
    static func fieldName(of line: [UInt8]) -> String? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        let name = line[..<colon]
        guard name.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { return nil }
        return String(decoding: name, as: UTF8.self).lowercased()
    }
}
