/// One message `sendmail` left in the maildrop because the relay could not take it then
/// (Postfix's maildrop file, nullmailer's queue file): who dropped it, the envelope, the
/// message ready for DATA.
public struct MaildropMessage: Equatable, Sendable {
    /// The uid `sendmail` ran as. The relay believes the file's owner, never this; a file
    /// whose owner differs from it was not written by `sendmail` as that user.
    public var uid: UInt32
    /// The reverse path, "" for the null sender.
    public var sender: String
    public var recipients: [String]
    /// The name `sendmail` would have said in EHLO.
    public var heloName: String
    /// Unix seconds when it was dropped.
    public var droppedAt: Int64
    /// CRLF lines, not dot-stuffed (what `SubmittedMessage` makes).
    public var content: [UInt8]

    public init(uid: UInt32, sender: String, recipients: [String], heloName: String, droppedAt: Int64, content: [UInt8]) {
        self.uid = uid
        self.sender = sender
        self.recipients = recipients
        self.heloName = heloName
        self.droppedAt = droppedAt
        self.content = content
    }
}

/// The drop file, in the spool file's spirit (`SpoolFileFormat`): a header line, the
/// envelope as `key=value` records (`SpoolRecord`), the content, and a fixed-size end
/// marker with both lengths and both CRC-32Cs:
///
///     SMARTHOST-MAILDROP 1\n
///     uid=1001\n  sender=a@b\n  rcpt=c@d\n ...  helo=host\n  dropped=<unix>\n
///     <content>
///     END <elen 8 hex> <clen 16 hex> <ecrc 8 hex> <ccrc 8 hex>\n   (48 bytes)
///
/// A file is whole only when the header, the end marker, the lengths (adding up to the
/// file's size exactly) and both checksums agree: a drop file cut short, grown, or
/// written by hand without the checksums is told apart from one `sendmail` finished.
public enum MaildropFormat {
    static let header = Array("SMARTHOST-MAILDROP 1\n".utf8)
    static let trailerLength = 48
    /// Room for the envelope: some 2 000 recipients of RFC 5321's longest path (256
    /// octets) — far past any cron job or web form, and a bound on what the relay reads.
    public static let maxEnvelopeLength = 1 << 20

    /// Why a file is not a drop file `sendmail` finished.
    public struct Defect: Error, Equatable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// The largest file a message of `maxContent` octets can make: larger files are refused
    /// before a byte of them is read.
    public static func maxFileSize(maxContent: Int) -> Int {
        header.count + maxEnvelopeLength + maxContent + trailerLength
    }

    public static func encode(_ message: MaildropMessage) -> [UInt8] {
        var records: [(String, String)] = [("uid", String(message.uid)), ("sender", message.sender)]
        records += message.recipients.map { ("rcpt", $0) }
        records += [("helo", message.heloName), ("dropped", String(message.droppedAt))]
        let envelope = SpoolRecord.encode(records)
        var out = header
        out.reserveCapacity(header.count + envelope.count + message.content.count + trailerLength)
        out += envelope
        out += message.content
        let trailer = "END " + SpoolFileFormat.hex(UInt64(envelope.count), digits: 8)
            + " " + SpoolFileFormat.hex(UInt64(message.content.count), digits: 16)
            + " " + SpoolFileFormat.hex(UInt64(SpoolCRC32C.checksum(envelope)), digits: 8)
            + " " + SpoolFileFormat.hex(UInt64(SpoolCRC32C.checksum(message.content)), digits: 8) + "\n"
        out += trailer.utf8
        return out
    }

    /// The message, or why the bytes are not a whole drop file.
    public static func decode(_ bytes: [UInt8]) throws(Defect) -> MaildropMessage {
        guard bytes.count >= header.count + trailerLength else { throw Defect("truncated (\(bytes.count) bytes)") }
        guard bytes.starts(with: header) else { throw Defect("not a drop file (bad header)") }
        let (envelopeLength, contentLength, envelopeCRC, contentCRC) = try trailer(bytes[(bytes.count - trailerLength)...])
        guard envelopeLength <= maxEnvelopeLength,
              header.count + envelopeLength + contentLength + trailerLength == bytes.count else {
            throw Defect("lengths in the end marker do not match the file size \(bytes.count)")
        }
        let envelope = bytes[header.count..<(header.count + envelopeLength)]
        let content = bytes[(header.count + envelopeLength)..<(bytes.count - trailerLength)]
        guard SpoolCRC32C.checksum(envelope) == envelopeCRC else { throw Defect("envelope checksum mismatch") }
        guard SpoolCRC32C.checksum(content) == contentCRC else { throw Defect("content checksum mismatch") }
        guard let records = SpoolRecord.decode(envelope) else { throw Defect("malformed envelope record") }
        return try message(records, content: Array(content))
    }

    private static func trailer(_ bytes: ArraySlice<UInt8>) throws(Defect) -> (Int, Int, UInt32, UInt32) {
        let b = Array(bytes)
        guard b.count == trailerLength, b.starts(with: Array("END ".utf8)), b[47] == 0x0A,
              b[12] == 0x20, b[29] == 0x20, b[38] == 0x20,
              let envelopeLength = SpoolFileFormat.parseHex(b[4..<12]),
              let contentLength = SpoolFileFormat.parseHex(b[13..<29]),
              let envelopeCRC = SpoolFileFormat.parseHex(b[30..<38]),
              let contentCRC = SpoolFileFormat.parseHex(b[39..<47]),
              contentLength < UInt64(Int.max / 4) else { throw Defect("missing or bad end marker") }
        return (Int(envelopeLength), Int(contentLength), UInt32(envelopeCRC), UInt32(contentCRC))
    }

    private static func message(_ records: [(String, String)], content: [UInt8]) throws(Defect) -> MaildropMessage {
        var uid: UInt32?, sender: String?, helo = "localhost", dropped: Int64 = 0
        var recipients: [String] = []
        for (key, value) in records {
            // sendmail never writes one, and the pickup would send it as SMTP.
            guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw Defect("control character in the envelope (\(key))")
            }
            switch key {
            case "uid": uid = UInt32(value)
            case "sender": sender = value
            case "rcpt": recipients.append(value)
            case "helo": helo = value
            case "dropped": dropped = Int64(value) ?? 0
            default: break   // a later sendmail may add keys
            }
        }
        guard let uid else { throw Defect("no uid in the envelope") }
        guard let sender else { throw Defect("no sender in the envelope") }
        guard !recipients.isEmpty else { throw Defect("no recipient in the envelope") }
        return MaildropMessage(uid: uid, sender: sender, recipients: recipients, heloName: helo, droppedAt: dropped, content: content)
    }
}
