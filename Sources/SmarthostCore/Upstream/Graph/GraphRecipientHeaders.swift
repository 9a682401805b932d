/// Graph's MIME `sendMail` takes the recipients from the message's `To:`, `Cc:` and `Bcc:`
/// headers, not from an envelope (it has none), and strips `Bcc:` from what it delivers.
/// So an envelope recipient the headers do not name — a blind copy, a list member — is
/// added in a `Bcc:` field, or Graph would never send to it. Byte-level, no Foundation.
///
/// The converse cannot be fixed in MIME: a header recipient that is not in this envelope
/// (a mailing list's `To:`, recipients another route carries) gets Graph's copy too.
enum GraphRecipientHeaders {
    static let recipientFields: Set<String> = ["to", "cc", "bcc"]

    /// `message` with one `Bcc:` field for the recipients its headers do not name; unchanged
    /// when they name them all. Addresses compare case-insensitively, as Exchange does.
    static func addingBcc(for recipients: [String], to message: [UInt8]) -> [UInt8] {
        var named = Set<String>()
        for value in UpstreamMessageRewriter.headerValues(named: recipientFields, in: message) {
            for address in addresses(in: value) { named.insert(address.lowercased()) }
        }
        var seen = Set<String>()
        let missing = recipients.filter { !named.contains($0.lowercased()) && seen.insert($0.lowercased()).inserted }
        guard !missing.isEmpty else { return message }
        return UpstreamMessageRewriter.appendingHeader(bccField(missing), to: message)
    }

    /// `Bcc: a@x,` CRLF ` b@y` CRLF: one address per line (RFC 5322 §2.2.3 folding), so no
    /// line comes near 998 octets however many recipients there are. Control characters
    /// cannot be in an envelope address; they are dropped anyway, so none injects a header.
    static func bccField(_ addresses: [String]) -> [UInt8] {
        let clean = addresses.map { String($0.unicodeScalars.filter { $0.value > 32 && $0.value != 127 }) }
        return Array(("Bcc: " + clean.joined(separator: ",\r\n ") + "\r\n").utf8)
    }

    /// The addr-specs of an address-list (RFC 5322 §3.4): `Name <a@b>`, bare `a@b`, groups
    /// (`team: a@b, c@d;`), comments and quoted display names skipped. Lenient, as a reader
    /// of what clients send must be: whatever is not an address is simply not one.
    static func addresses(in value: String) -> [String] {
        var result: [String] = []
        var plain: [UInt8] = []      // the element outside angle brackets, comments dropped
        var angle: [UInt8]?          // inside < >
        var lastAngle: [UInt8]?
        var quoted = false, escaped = false, commentDepth = 0
        func endElement() {
            let candidate = lastAngle.map(stripRoute) ?? plain
            let text = String(decoding: candidate.filter { $0 != 32 && $0 != 9 }, as: UTF8.self)
            if text.contains("@") { result.append(text) }
            plain.removeAll()
            angle = nil
            lastAngle = nil
        }
        for byte in value.utf8 {
            if escaped { escaped = false; append(byte, &plain, &angle); continue }
            if quoted {
                if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { quoted = false }
                append(byte, &plain, &angle)
                continue
            }
            if commentDepth > 0 {
                if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "(") { commentDepth += 1 }
                else if byte == UInt8(ascii: ")") { commentDepth -= 1 }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): quoted = true; append(byte, &plain, &angle)
            case UInt8(ascii: "("): commentDepth = 1
            case UInt8(ascii: "<"): angle = []
            case UInt8(ascii: ">"): lastAngle = angle; angle = nil
            case UInt8(ascii: ","), UInt8(ascii: ";"): if angle == nil { endElement() } else { angle?.append(byte) }
            case UInt8(ascii: ":"):
                // A group's display name ends here; inside angle brackets it is a route.
                if angle == nil { plain.removeAll() } else { angle?.append(byte) }
            default: append(byte, &plain, &angle)
            }
        }
        endElement()
        return result
    }

    private static func append(_ byte: UInt8, _ plain: inout [UInt8], _ angle: inout [UInt8]?) {
        if angle != nil { angle!.append(byte) } else { plain.append(byte) }
    }

    /// `<@relay.example:user@host>` (RFC 5322 §4.4 obs-route): the address is after the colon.
    private static func stripRoute(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.first == UInt8(ascii: "@"), let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return bytes }
        return Array(bytes[(colon + 1)...])
    }
}
