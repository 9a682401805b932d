import Foundation
import Testing
@testable import SmarthostCore

/// Real clients from Debian packages submit to a real relay process; the test then reads the
/// spool and checks the bytes that were kept.
@Suite(.serialized) struct InboundClientsEndToEndTests {
    static let message = """
    From: App <app@acme.example>\r
    To: Someone <someone@example.com>\r
    Subject: end-to-end \(UUID().uuidString)\r
    Message-ID: <e2e-\(UUID().uuidString)@acme.example>\r
    \r
    Hello from the end-to-end test.\r
    .leading dot line\r
    Last line.\r

    """

    @Test func swaksSubmissionIsSpooledByteForByte() throws {
        let relay = try RelayProcess()
        try relay.start()
        let dataFile = relay.directory.appendingPathComponent("message.eml")
        try Self.message.write(to: dataFile, atomically: true, encoding: .utf8)
        let run = try ToolRun.run("/usr/bin/swaks", [
            "--server", "127.0.0.1:\(relay.port)", "--from", "app@acme.example", "--to", "someone@example.com",
            "--data", "@\(dataFile.path)", "--helo", "client.test",
        ])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("250 2.0.0 Ok: queued as"))
        let spooled = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(spooled.count == 1)
        let kept = try #require(spooled.first)
        #expect(kept.sender == "app@acme.example")
        #expect(kept.recipients == ["someone@example.com"])
        #expect(kept.content.hasPrefix("Received: from client.test"))
        // swaks always sends CRLF before the final ".", even after a body ending in CRLF.
        #expect(kept.contentAfterReceived == Self.message + "\r\n")
        relay.stop()
    }

    @Test func curlSubmissionIsSpooledByteForByte() throws {
        let relay = try RelayProcess()
        try relay.start()
        let dataFile = relay.directory.appendingPathComponent("message.eml")
        try Self.message.write(to: dataFile, atomically: true, encoding: .utf8)
        let run = try ToolRun.run("/usr/bin/curl", [
            "-sS", "smtp://127.0.0.1:\(relay.port)/client.test", "--mail-from", "app@acme.example",
            "--mail-rcpt", "one@example.com", "--mail-rcpt", "two@example.com", "--upload-file", dataFile.path,
        ])
        #expect(run.status == 0, "\(run.output)")
        let spooled = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(spooled.count == 1)
        let kept = try #require(spooled.first)
        #expect(kept.recipients == ["one@example.com", "two@example.com"])
        #expect(kept.contentAfterReceived == Self.message)
        relay.stop()
    }

    @Test func pythonSmtplibSubmissionIsSpooledByteForByte() throws {
        let relay = try RelayProcess()
        try relay.start()
        let script = """
        import smtplib, sys
        data = open(sys.argv[2], 'rb').read()
        with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.test') as s:
            code, text = s.ehlo()
            assert b'PIPELINING' in text and b'8BITMIME' in text and b'SMTPUTF8' in text, text
            s.sendmail('app@acme.example', ['someone@example.com'], data)
        print('sent')
        """
        let dataFile = relay.directory.appendingPathComponent("message.eml")
        try Self.message.write(to: dataFile, atomically: true, encoding: .utf8)
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(relay.port)", dataFile.path])
        #expect(run.status == 0, "\(run.output)")
        let spooled = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(spooled.count == 1)
        #expect(spooled.first?.contentAfterReceived == Self.message)
        relay.stop()
    }

    @Test func smtpSourceBatchIsSpooledWhole() throws {
        let relay = try RelayProcess()
        try relay.start()
        let run = try ToolRun.run("/usr/sbin/smtp-source", [
            "-s", "5", "-m", "50", "-l", "2048", "-f", "load@acme.example", "-t", "sink@example.com",
            "127.0.0.1:\(relay.port)",
        ])
        #expect(run.status == 0, "\(run.output)")
        let spooled = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(spooled.count == 50)
        for kept in spooled {
            #expect(kept.sender == "load@acme.example")
            #expect(kept.recipients == ["sink@example.com"])
            // smtp-source writes headers plus `-l` bytes of body; the body survives whole.
            #expect(kept.content.utf8.count > 2048)
        }
        relay.stop()
    }
}
