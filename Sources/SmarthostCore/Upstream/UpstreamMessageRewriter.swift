/// Header changes made to a message before it goes upstream. Only the header section
/// (RFC 5322 §2.1: up to the first empty line) is read and changed; the body is copied
/// byte for byte. Header names compare case-insensitively (RFC 5322 §1.2.2), and a
/// field includes its folded continuation lines (§2.2.3), so removing a header removes
/// all of it.

/// What to do with the message's `From:` when the route has a from address.
public enum UpstreamFromRewrite: String, Sendable, Equatable, CaseIterable {
    /// Add `From:` only when the message has none.
    case fill
    /// Remove every `From:` and put the route's in its place (Gmail-style servers).
    case replace
}

/// The route's sender identity for the `From:` header.
public struct UpstreamFromAddress: Sendable, Equatable {
    public var address: String
    public var displayName: String?

    public init(address: String, displayName: String? = nil) {
        self.address = address
        self.displayName = displayName
    }
}

public enum UpstreamMessageRewriter {
    public struct Result: Sendable, Equatable {
        public var message: [UInt8]
        /// The removed header's value (first instance, unfolded and trimmed), for the
        /// organization classifier; nil when the message had none.
        public var removedHeaderValue: String?
    }

    /// Removes every instance of `headerName` (the org header: tenant ids never leave the
    /// machine) and applies the `From:` rule when `from` is given.
    public static func rewrite(_ message: [UInt8], removingHeader headerName: String,
                               from: UpstreamFromAddress?, mode: UpstreamFromRewrite) -> Result {
        let (fields, bodyStart, needsSeparator) = headerFields(of: message)
        let removed = lowercased(headerName)
        let newFrom = from.map(fromHeader)
        let hasFrom = fields.contains { $0.name == Array("from".utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 128)
        var removedValue: String?
        var fromWritten = false
        for field in fields {
            if field.name == removed {
                if removedValue == nil { removedValue = value(of: field, in: message) }
                continue
            }
            if field.name == Array("from".utf8), mode == .replace, let newFrom {
                if !fromWritten { out += newFrom }
                fromWritten = true
                continue
            }
            out += message[field.range]
        }
        if !hasFrom, let newFrom {
            if let last = out.last, last != 10 { out += [13, 10] }
            out += newFrom
        }
        if needsSeparator { out += [13, 10] }
        out += message[bodyStart...]
        return Result(message: out, removedHeaderValue: removedValue)
    }

    /// The value of the first header field called `name`, unfolded and trimmed.
    public static func headerValue(named name: String, in message: [UInt8]) -> String? {
        let wanted = lowercased(name)
        let (fields, _, _) = headerFields(of: message)
        return fields.first { $0.name == wanted }.map { value(of: $0, in: message) }
    }

    /// Every value of the header fields with these (lower-case) names, in order, each
    /// unfolded and trimmed.
    static func headerValues(named names: Set<String>, in message: [UInt8]) -> [String] {
        let wanted = Set(names.map(lowercased))
        return headerFields(of: message).fields.filter { $0.name.map(wanted.contains) ?? false }.map { value(of: $0, in: message) }
    }

    /// `field` (a whole header line, CRLF included) added as the last field of the header
    /// section, before the empty line; the body is untouched.
    static func appendingHeader(_ field: [UInt8], to message: [UInt8]) -> [UInt8] {
        let (fields, bodyStart, needsSeparator) = headerFields(of: message)
        var out = Array(message[..<bodyStart])
        out.reserveCapacity(message.count + field.count + 2)
        if let last = fields.last, message[last.range].last != 10 { out += [13, 10] }
        out += field
        if needsSeparator { out += [13, 10] }
        out += message[bodyStart...]
        return out
    }

    /// `From: "Display" <addr>` + CRLF. Non-ASCII display names become RFC 2047
    /// encoded-words; ASCII ones are quoted when they hold anything but atext and spaces
    /// (RFC 5322 §3.2.3, §3.2.4). Control characters are dropped from both parts so a
    /// configured name can never inject a header.
    public static func fromHeader(_ from: UpstreamFromAddress) -> [UInt8] {
        let address = String(from.address.unicodeScalars.filter { $0.value >= 32 && $0.value != 127 })
        let name = String((from.displayName ?? "").unicodeScalars.filter { $0.value >= 32 && $0.value != 127 })
            .trimmingSpaces()
        let mailbox = name.isEmpty ? address : "\(phrase(for: name)) <\(address)>"
        return Array("From: \(mailbox)\r\n".utf8)
    }

    // MARK: Header fields

    private struct Field {
        /// The whole field, continuation lines and line end included.
        var range: Range<Int>
        /// Lower-cased name; nil for a line that is not a well-formed field.
        var name: [UInt8]?
    }

    /// Splits the header section into fields. It ends at the first empty line, or at the
    /// first line that is neither a field nor a continuation: then `needsSeparator` says
    /// the empty line RFC 5322 §2.1 requires must be added before the body.
    private static func headerFields(of message: [UInt8]) -> (fields: [Field], bodyStart: Int, needsSeparator: Bool) {
        var fields: [Field] = []
        var index = 0
        while index < message.count {
            let lineEnd = message[index...].firstIndex(of: 10).map { $0 + 1 } ?? message.count
            let first = message[index]
            if first == 13 || first == 10 { return (fields, index, false) }   // the empty line
            if (first == 32 || first == 9), !fields.isEmpty {
                fields[fields.count - 1].range = fields[fields.count - 1].range.lowerBound..<lineEnd
            } else if let name = fieldName(in: message[index..<lineEnd]) {
                fields.append(Field(range: index..<lineEnd, name: name))
            } else {
                return (fields, index, true)
            }
            index = lineEnd
        }
        return (fields, message.count, false)
    }

    /// RFC 5322 §3.6.8: field-name = 1*ftext (printable ASCII but ":"), then ":".
    private static func fieldName(in line: ArraySlice<UInt8>) -> [UInt8]? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { return nil }
        let name = line[line.startIndex..<colon]
        guard name.allSatisfy({ (33...126).contains($0) }) else { return nil }
        return name.map(lowercase)
    }

    private static func value(of field: Field, in message: [UInt8]) -> String {
        let bytes = message[field.range]
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return "" }
        let unfolded = bytes[(colon + 1)...].filter { $0 != 13 && $0 != 10 }   // §2.2.3
        return String(decoding: unfolded, as: UTF8.self).trimmingSpaces()
    }

    private static func lowercased(_ name: String) -> [UInt8] { name.utf8.map(lowercase) }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        (65...90).contains(byte) ? byte + 32 : byte
    }

    // MARK: Display names

    private static func phrase(for name: String) -> String {
        if !name.utf8.allSatisfy({ $0 < 128 }) { return encodedWords(name) }
        if name.utf8.allSatisfy(isAtextOrSpace) { return name }
        var quoted = "\""
        for character in name {
            if character == "\"" || character == "\\" { quoted += "\\" }
            quoted.append(character)
        }
        return quoted + "\""
    }

    /// RFC 5322 §3.2.3 atext, plus the spaces between the atoms of a phrase.
    private static func isAtextOrSpace(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: " "):
            return true
        default:
            return Array("!#$%&'*+-/=?^_`{|}~".utf8).contains(byte)
        }
    }

    /// RFC 2047 §2, §4.1: "=?UTF-8?B?…?=" words of at most 75 characters, split between
    /// characters (never inside one, §5) and folded onto continuation lines.
    private static func encodedWords(_ name: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in name {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {   // 45 octets → 60 base64 + 12 = 72 ≤ 75
                words.append(encodedWord(chunk))
                chunk.removeAll()
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append(encodedWord(chunk)) }
        return words.joined(separator: "\r\n ")
    }

    private static func encodedWord(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?" + UpstreamBase64.encodeString(bytes) + "?="
    }
}

private extension String {
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return String(scalars[first...last])
    }
}
