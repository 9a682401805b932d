import Testing
@testable import SmarthostCore

/// The drop file `sendmail` leaves when the relay cannot take a message: what it writes
/// reads back whole, and nothing else passes for it.
@Suite struct MaildropFormatTests {
    static let message = MaildropMessage(
        uid: 1001, sender: "cron@host.example", recipients: ["ops@example.com", "ann@example.com"],
        heloName: "host.example", droppedAt: 1_796_656_885,
        content: Array("Subject: backup\r\nFrom: cron@host.example\r\n\r\nall done %0A\r\n.\r\n".utf8))

    @Test func roundTrip() throws {
        let bytes = MaildropFormat.encode(Self.message)
        #expect(bytes.starts(with: Array("SMARTHOST-MAILDROP 1\n".utf8)))
        #expect(try MaildropFormat.decode(bytes) == Self.message)
        var nullSender = Self.message
        nullSender.sender = ""
        #expect(try MaildropFormat.decode(MaildropFormat.encode(nullSender)) == nullSender)
    }

    /// Cut anywhere — inside the end marker, the content, the envelope, the header — it is
    /// never read as a message.
    @Test func aTornFileIsRefusedWhereverItIsCut() {
        let bytes = MaildropFormat.encode(Self.message)
        for length in 0..<bytes.count {
            #expect(throws: MaildropFormat.Defect.self, "cut at \(length)") {
                _ = try MaildropFormat.decode(Array(bytes.prefix(length)))
            }
        }
        #expect(throws: MaildropFormat.Defect.self) { _ = try MaildropFormat.decode(bytes + [0x0A]) }
    }

    @Test func aForgedFileFailsItsChecksums() throws {
        let bytes = MaildropFormat.encode(Self.message)
        let text = String(decoding: bytes, as: UTF8.self)
        // Another recipient, same length: the envelope checksum catches it.
        let redirected = Array(text.replacingOccurrences(of: "rcpt=ops@", with: "rcpt=evl@").utf8)
        #expect(redirected.count == bytes.count)
        #expect(throws: MaildropFormat.Defect("envelope checksum mismatch")) { _ = try MaildropFormat.decode(redirected) }
        let altered = Array(text.replacingOccurrences(of: "all done", with: "all gone").utf8)
        #expect(throws: MaildropFormat.Defect("content checksum mismatch")) { _ = try MaildropFormat.decode(altered) }
        // Written by hand, without sendmail's end marker.
        let handMade = Array("SMARTHOST-MAILDROP 1\nuid=0\nsender=a@b\nrcpt=c@d\nSubject: x\r\n\r\nsome body text, long enough to hold an end marker\r\n".utf8)
        #expect(throws: MaildropFormat.Defect("missing or bad end marker")) { _ = try MaildropFormat.decode(handMade) }
        #expect(throws: MaildropFormat.Defect("not a drop file (bad header)")) {
            _ = try MaildropFormat.decode(Array("SMARTHOST-SPOOL 1\n".utf8) + bytes.dropFirst(21))
        }
    }

    /// The envelope is sent to the inbound session as SMTP commands: a CR LF in a value
    /// would add commands, so it is refused even with valid checksums.
    @Test func anEnvelopeValueWithALineEndIsRefused() {
        var message = Self.message
        message.recipients = ["ops@example.com>\r\nRCPT TO:<other@example.com"]
        #expect(throws: MaildropFormat.Defect("control character in the envelope (rcpt)")) {
            _ = try MaildropFormat.decode(MaildropFormat.encode(message))
        }
        message.recipients = []
        #expect(throws: MaildropFormat.Defect("no recipient in the envelope")) {
            _ = try MaildropFormat.decode(MaildropFormat.encode(message))
        }
    }

    /// The pickup's verdict before reading: the bound is the message size limit plus the
    /// envelope's, at it is read, one past is refused.
    @Test func verdictsBeforeReading() {
        let bound = MaildropFormat.maxFileSize(maxContent: 1000)
        #expect(bound == 21 + (1 << 20) + 1000 + 48)
        func facts(_ kind: MaildropVerdict.Kind, links: Int = 1, size: Int = 10, age: Int64 = 0) -> MaildropVerdict.Facts {
            MaildropVerdict.Facts(kind: kind, links: links, size: size, ageSeconds: age)
        }
        let name = "0123456789abcdef0123456789abcdef"
        #expect(MaildropVerdict.judge(name: name, facts(.regular, size: bound), maxFileSize: bound) == .read)
        #expect(MaildropVerdict.judge(name: name, facts(.regular, size: bound + 1), maxFileSize: bound)
            == .remove("oversized (\(bound + 1) bytes, at most \(bound))"))
        #expect(MaildropVerdict.judge(name: name, facts(.symlink), maxFileSize: bound) == .remove("a symbolic link (never followed)"))
        #expect(MaildropVerdict.judge(name: name, facts(.other), maxFileSize: bound)
            == .remove("not a regular file (FIFO, socket or device)"))
        #expect(MaildropVerdict.judge(name: name, facts(.regular, links: 2), maxFileSize: bound) == .remove("a hard link (2 names)"))
        #expect(MaildropVerdict.judge(name: name, facts(.directory), maxFileSize: bound) == .skip)
        // A .tmp is sendmail still writing, until it is an hour old.
        let temporary = "." + name + ".tmp"
        #expect(MaildropVerdict.judge(name: temporary, facts(.regular, age: 3599), maxFileSize: bound) == .skip)
        #expect(MaildropVerdict.judge(name: temporary, facts(.regular, age: 3600), maxFileSize: bound) == .read)
    }

    @Test func sendmailFindsTheMaildropWithoutReadingTheConfiguration() {
        #expect(Maildrop.locate(configuredSpool: "/srv/spool") == "/srv/spool/maildrop")
        #expect(Maildrop.locate(configuredSpool: nil, isDirectory: { _ in false }) == "/var/lib/smarthost/spool/maildrop")
        #expect(Maildrop.locate(configuredSpool: nil, isDirectory: { $0 == "/var/spool/smarthost/maildrop" })
            == "/var/spool/smarthost/maildrop")
        let names = Set((0..<100).map { _ in Maildrop.randomName() })
        #expect(names.count == 100 && names.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }
}
