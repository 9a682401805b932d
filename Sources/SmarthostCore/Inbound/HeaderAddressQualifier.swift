/// Qualifies bare local parts in the address fields of a message's header section, on the
/// bytes (the body and every other byte are copied unchanged; folding, comments and display
/// names stay as written): `From: root (Cron Daemon)` → `From: root@box.example (Cron Daemon)`,
/// `To: Ops <ops>, a@x` → `To: Ops <ops@box.example>, a@x`. Postfix's cleanup(8) does the
/// same (`append_at_myorigin`) for the sender and recipient fields it knows; so do we.
///
/// The address list grammar is RFC 5322 §3.4: mailboxes split at commas outside quoted
/// strings, comments and angle brackets; a group's name ends at its `:` and the group at
/// `;`. An `addr-spec` is qualified only when it is one word (a dot-atom or a quoted string)
/// without an `@`; anything this grammar cannot read as one mailbox is left as it is.
public enum HeaderAddressQualifier {
    /// RFC 5322 §3.6.2 originator and §3.6.3 destination fields, and their §3.6.6 resent
    /// forms. `Bcc:` too: sendmail removes it, an SMTP client may not.
    static let addressFields: Set<[UInt8]> = Set(
        ["from", "sender", "reply-to", "to", "cc", "bcc",
         "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc"].map { Array($0.utf8) })

    /// `bytes` is the start of the content: the header section and maybe more. With
    /// `complete` false it was cut at a bound, so its last field may go on: that one is left.
    public static func qualify(_ bytes: [UInt8], domain: String, complete: Bool) -> [UInt8] {
        let suffix = Array(("@" + domain).utf8)
        var fields = HeaderFields.scan(bytes)
        if !complete, fields.endsInside { fields.ranges.removeLast() }
        var inserts: [Int] = []
        for field in fields.ranges where addressFields.contains(field.name) {
            inserts += insertionPoints(bytes, from: field.valueStart, to: field.end)
        }
        guard !inserts.isEmpty else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + inserts.count * suffix.count)
        var copied = 0
        for point in inserts {
            out += bytes[copied..<point]
            out += suffix
            copied = point
        }
        out += bytes[copied...]
        return out
    }

    /// Where `@domain` goes in one field value: after each bare addr-spec.
    static func insertionPoints(_ bytes: [UInt8], from start: Int, to end: Int) -> [Int] {
        var points: [Int] = []
        var mailbox = Mailbox()
        var quoted = false, escaped = false, inAngle = false, comment = 0, commentEscaped = false
        for index in start..<end {
            let byte = bytes[index]
            if commentEscaped { commentEscaped = false; continue }
            if escaped { escaped = false; mailbox.extend(index, inAngle: inAngle); continue }
            if comment > 0 {
                if byte == 0x5C { commentEscaped = true } else if byte == 0x28 { comment += 1 } else if byte == 0x29 { comment -= 1 }
                continue
            }
            if quoted {
                if byte == 0x5C { escaped = true } else if byte == 0x22 { quoted = false }
                mailbox.extend(index, inAngle: inAngle)
                continue
            }
            switch byte {
            case 0x22: quoted = true; mailbox.word(index, inAngle: inAngle)
            case 0x28: comment = 1; mailbox.wordEnds()
            case 0x3C where !inAngle: inAngle = true; mailbox.openAngle()
            case 0x3E where inAngle: inAngle = false; mailbox.angleClose = index
            case 0x2C where !inAngle, 0x3B where !inAngle:
                if let point = mailbox.insertionPoint { points.append(point) }
                mailbox = Mailbox()
            case 0x3A where !inAngle: mailbox = Mailbox()   // "team:" names a group
            case 0x20, 0x09, 0x0D, 0x0A: mailbox.wordEnds()
            default:
                mailbox.word(index, inAngle: inAngle)
                if byte == 0x40 { mailbox.sawAt(inAngle: inAngle) }
            }
        }
        if !quoted, !inAngle, comment == 0, let point = mailbox.insertionPoint { points.append(point) }
        return points
    }

    /// One mailbox of the list as it is read.
    struct Mailbox {
        var words = 0
        var inWord = false
        var wordEnd = 0
        var wordHasAt = false
        var angleOpened = false
        var angleClose: Int?
        var angleWords = 0
        var angleHasAt = false

        mutating func word(_ index: Int, inAngle: Bool) {
            if inAngle {
                angleWords = max(angleWords, 1)
                return
            }
            if !inWord { words += 1; inWord = true }
            wordEnd = index + 1
        }

        mutating func extend(_ index: Int, inAngle: Bool) {
            if inAngle { return }
            wordEnd = index + 1
        }

        mutating func wordEnds() { inWord = false }

        mutating func sawAt(inAngle: Bool) {
            if inAngle { angleHasAt = true } else { wordHasAt = true }
        }

        mutating func openAngle() {
            inWord = false
            angleOpened = true
            angleClose = nil
            angleWords = 0
            angleHasAt = false
        }

        /// `name <local>`: before the `>`; `local (comment)`: after the word; else none.
        var insertionPoint: Int? {
            if angleOpened {
                guard let close = angleClose, angleWords > 0, !angleHasAt else { return nil }
                return close
            }
            return words == 1 && !wordHasAt ? wordEnd : nil
        }
    }
}

/// The fields at the start of a message: RFC 5322 §2.2, a field goes on over lines that
/// start with a space or tab (§2.2.3); the section ends at the empty line or at the first
/// line that is neither a field nor a continuation.
struct HeaderFields {
    struct Field {
        /// The lower-cased name.
        var name: [UInt8]
        var valueStart: Int
        /// Past the field's last line end (or the end of the bytes).
        var end: Int
    }

    var ranges: [Field] = []
    /// The bytes ended inside the header section (no empty line was reached).
    var endsInside = false

    static func scan(_ bytes: [UInt8]) -> HeaderFields {
        var fields = HeaderFields()
        var index = 0
        while index < bytes.count {
            let lineEnd = bytes[index...].firstIndex(of: 0x0A).map { $0 + 1 } ?? bytes.count
            let first = bytes[index]
            if first == 0x0D || first == 0x0A { return fields }
            if first == 0x20 || first == 0x09 {
                guard !fields.ranges.isEmpty else { return fields }
                fields.ranges[fields.ranges.count - 1].end = lineEnd
            } else if let colon = bytes[index..<lineEnd].firstIndex(of: 0x3A), colon > index,
                      bytes[index..<colon].allSatisfy({ (33...126).contains($0) }) {
                let name = bytes[index..<colon].map { (65...90).contains($0) ? $0 + 32 : $0 }
                fields.ranges.append(Field(name: name, valueStart: colon + 1, end: lineEnd))
            } else {
                return fields
            }
            index = lineEnd
        }
        fields.endsInside = true
        return fields
    }

    /// Just past the empty line that ends the header section (CRLF CRLF), searching from
    /// `from` (an earlier search's end less 3, so a split CRLF CRLF is found).
    static func endOfSection(in bytes: [UInt8], from: Int) -> Int? {
        var index = max(0, from)
        while index + 3 < bytes.count {
            if bytes[index] == 0x0D, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                return index + 4
            }
            index += 1
        }
        return nil
    }
}
