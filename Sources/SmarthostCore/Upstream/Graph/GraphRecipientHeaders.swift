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

    /// The addr-specs of an address-list (RFC 5322 §3.4), as the sendmail path reads them
    /// (`AddressList`); a display name without an address is not one.
    static func addresses(in value: String) -> [String] {
        AddressList.addresses(in: value).filter { $0.contains("@") }
    }
}
