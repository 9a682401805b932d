import Foundation
import Testing
@testable import SmarthostCore

/// Failure notices and delay warnings (RFC 3464) end to end: a real relay, a real aiosmtpd
/// upstream that refuses chosen recipients, and every notice parsed with Python's `email`
/// package.
@Suite(.serialized) struct NoticesEndToEndTests {
    /// The parsed notice, as `parse_dsn.py` prints it.
    struct Parsed: Decodable {
        var report_type: String?
        var from: String?
        var to: String?
        var subject: String?
        var auto_submitted: String?
        var parts: [String]
        var human: String
        var per_message: [String: String]
        var recipients: [[String: String]]
        var original_headers: String?
        var returned_body: String?
        var size: Int
        var defects: [String]
    }

    static func parse(_ message: UpstreamProcess.Received, in directory: URL) throws -> Parsed {
        let file = directory.appendingPathComponent("dsn-\(UUID().uuidString).eml")
        try message.content.write(to: file, atomically: true, encoding: .utf8)
        let script = URL(fileURLWithPath: UpstreamProcess.scriptPath).deletingLastPathComponent().appendingPathComponent("parse_dsn.py").path
        let run = try ToolRun.run("/usr/bin/python3", [script, file.path])
        try #require(run.status == 0, "not a delivery report: \(run.output)\n\(message.content)")
        return try JSONDecoder().decode(Parsed.self, from: Data(run.output.utf8))
    }

    static func relay(upstream: UpstreamProcess, notices: String = "", orgs: String = "") throws -> RelayProcess {
        let relay = try RelayProcess(configBody: """
        queue: { retry_min: 1s, retry_max: 1s, max_age: 1h }
        \(notices)
        default:
          host: 127.0.0.1
          port: \(upstream.port)
          tls: none
        host:
          use: default
        \(orgs)
        """)
        try relay.start()
        return relay
    }

    static func submit(_ relay: RelayProcess, from: String, to: [String], data: String) throws {
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: from, to: to, data: data)
    }

    static func notices(_ received: [UpstreamProcess.Received]) -> [UpstreamProcess.Received] {
        received.filter { $0.mailFrom == "<>" }   // aiosmtpd records the null sender as written
    }

    @Test func deadLetterSendsOneWellFormedReportToTheSender() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--reject-rcpt", "gone@example.com=550 5.1.1 no such user"])
        let relay = try Self.relay(upstream: upstream)
        try Self.submit(relay, from: "app@acme.example", to: ["ok@example.com", "gone@example.com"], data:
            "From: App <app@acme.example>\r\nSubject: quarterly report\r\nX-Smarthost-Org: acme\r\n\r\nThe body comes back.\r\n")
        let received = upstream.waitForMessages(2)
        try #require(received.count == 2, "relay log:\n\(relay.log)")
        let notices = Self.notices(received)
        try #require(notices.count == 1)
        let notice = notices[0]
        #expect(notice.recipients == ["app@acme.example"])
        let parsed = try Self.parse(notice, in: relay.directory)
        #expect(parsed.report_type == "delivery-status")
        // Small, and to the sender alone: returned whole (NoticeOriginal).
        #expect(parsed.parts == ["text/plain", "message/delivery-status", "message/rfc822"])
        #expect(parsed.defects.isEmpty, "\(parsed.defects)")
        #expect(parsed.to == "<app@acme.example>")
        #expect(parsed.from == "Mail Delivery System <MAILER-DAEMON@relay.test>")
        #expect(parsed.auto_submitted == "auto-replied")
        #expect(parsed.per_message["Reporting-MTA"] == "dns; relay.test")
        #expect(parsed.recipients.count == 1, "one block per refused recipient: \(parsed.recipients)")
        let block = try #require(parsed.recipients.first)
        #expect(block["Final-Recipient"] == "rfc822; gone@example.com")
        #expect(block["Action"] == "failed")
        #expect(block["Status"] == "5.1.1")
        #expect(block["Remote-MTA"] == "dns; 127.0.0.1")
        #expect(block["Diagnostic-Code"]?.contains("550 5.1.1 no such user") == true)
        let original = try #require(parsed.original_headers)
        #expect(original.contains("Subject: quarterly report"))
        #expect(!original.contains("X-Smarthost-Org"), "the org header never leaves the machine")
        #expect(parsed.returned_body == "The body comes back.\r\n" || parsed.returned_body == "The body comes back.\n")
        #expect(parsed.human.contains("gone@example.com"))
        // Exactly one: wait until the relay settled everything, then count again.
        #expect(eventually { relay.log.contains("notice queued") && relay.log.contains("delivered") })
        Thread.sleep(forTimeInterval: 1.5)
        #expect(Self.notices(upstream.received()).count == 1)
        #expect(relay.log.components(separatedBy: "notice queued").count - 1 == 1)
        relay.stop()
    }

    @Test func nullSenderGetsNoNoticeAndAFailingNoticeMakesNoOther() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: [
            "--reject-rcpt", "gone@example.com=550 5.1.1 no such user",
            "--reject-rcpt", "bouncing@example.com=550 5.1.1 sender mailbox gone too",
        ])
        let relay = try Self.relay(upstream: upstream)
        try Self.submit(relay, from: "", to: ["gone@example.com"], data: "Subject: from the null sender\r\n\r\nx\r\n")
        #expect(eventually { relay.log.contains(">failed attempts=") }, "\(relay.log)")
        try Self.submit(relay, from: "bouncing@example.com", to: ["gone@example.com"], data: "Subject: doubly bad\r\n\r\nx\r\n")
        // The second message fails, its notice to bouncing@ fails too: three dead letters, one notice.
        #expect(eventually {
            ((try? FileManager.default.contentsOfDirectory(atPath: relay.spoolPath + "/failed")) ?? [])
                .filter { !$0.hasSuffix(".state") }.count >= 3
        }, "\(relay.log)")
        Thread.sleep(forTimeInterval: 1.5)
        #expect(relay.log.components(separatedBy: "notice queued").count - 1 == 1, "\(relay.log)")
        #expect(upstream.received().isEmpty)
        relay.stop()
    }

    @Test func copyToAtOrgAndHostLevel() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--reject-rcpt", "gone@example.com=550 5.1.1 no such user"])
        let relay = try Self.relay(upstream: upstream, notices: """
        notices:
          copy_to: postmaster@provider.example
        """, orgs: """
        orgs:
          acme:
            use: default
            senders: ["*@acme.example"]
            notices: { copy_to: it@acme.example }
        """)
        try Self.submit(relay, from: "app@acme.example", to: ["gone@example.com"], data: "Subject: acme\r\n\r\nx\r\n")
        try Self.submit(relay, from: "cron@host.example", to: ["gone@example.com"], data: "Subject: host\r\n\r\nx\r\n")
        let received = upstream.waitForMessages(2)
        let notices = Self.notices(received)
        try #require(notices.count == 2, "\(relay.log)")
        let byRecipients = Set(notices.map { $0.recipients.joined(separator: ",") })
        #expect(byRecipients == ["app@acme.example,it@acme.example", "cron@host.example,postmaster@provider.example"])
        for notice in notices { _ = try Self.parse(notice, in: relay.directory) }
        relay.stop()
    }

    @Test func bounceSenderOffLeavesOnlyTheCopy() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--reject-rcpt", "gone@example.com=550 5.1.1 no such user"])
        let relay = try Self.relay(upstream: upstream, notices: """
        notices: { bounce_sender: false, copy_to: postmaster@provider.example }
        """)
        try Self.submit(relay, from: "app@acme.example", to: ["gone@example.com"], data: "Subject: s\r\n\r\nx\r\n")
        let notices = Self.notices(upstream.waitForMessages(1))
        try #require(notices.count == 1, "\(relay.log)")
        #expect(notices[0].recipients == ["postmaster@provider.example"])
        relay.stop()
    }

    @Test func delayWarningFiresOnceAlsoAcrossARestart() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--reject-rcpt", "busy@example.com=450 4.2.0 mailbox busy"])
        let relay = try Self.relay(upstream: upstream, notices: "notices: { delay_warning: 1s }")
        try Self.submit(relay, from: "app@acme.example", to: ["busy@example.com"], data: "Subject: slow one\r\n\r\nx\r\n")
        let received = upstream.waitForMessages(1)
        try #require(received.count == 1, "\(relay.log)")
        let parsed = try Self.parse(received[0], in: relay.directory)
        #expect(received[0].recipients == ["app@acme.example"])
        #expect(parsed.subject == "Delayed Mail (still being retried)")
        #expect(parsed.recipients.count == 1)
        #expect(parsed.recipients.first?["Action"] == "delayed")
        #expect(parsed.recipients.first?["Status"] == "4.2.0")
        // Further deferrals send no second warning, not even after a restart.
        let deferredBefore = relay.log.components(separatedBy: "deferred").count
        #expect(eventually(timeout: 15) { relay.log.components(separatedBy: "deferred").count >= deferredBefore + 2 }, "\(relay.log)")
        relay.stop()
        try relay.start()
        #expect(eventually(timeout: 15) { relay.log.components(separatedBy: "deferred").count >= 3 }, "\(relay.log)")
        #expect(upstream.received().count == 1)
        #expect(!relay.log.contains("notice queued"), "no second warning after the restart:\n\(relay.log)")
        relay.stop()
    }

    static func config(port: UInt16, minFreeSpace: String) -> String {
        """
        queue: { retry_min: 1s, retry_max: 1s, max_age: 1h }
        limits: { min_free_space: \(minFreeSpace) }
        default:
          host: 127.0.0.1
          port: \(port)
          tls: none
        host:
          use: default
        """
    }

    /// Issue 19 item 6: a message dead-lettered while the spool is below `min_free_space`
    /// still gets its notice, in the spool before the dead letter moves, and a kill -9
    /// does not lose it. The floor is raised above the file system's free space by a
    /// restart with a new configuration (the spool's floor is read at start).
    @Test func aNoticeAtTheDiskFloorIsInTheSpoolAndSurvivesKill9() throws {
        // Accepted while the upstream is unreachable: the message waits in queue/.
        let relay = try RelayProcess(configBody: Self.config(port: 9, minFreeSpace: "1MiB"))
        try relay.start()
        try Self.submit(relay, from: "app@acme.example", to: ["gone@example.com"],
                        data: "From: App <app@acme.example>\r\nSubject: floor\r\n\r\nat the floor\r\n")
        #expect(eventually { relay.log.contains("deferred") }, "\(relay.log)")
        relay.stop()
        // Restarted below the floor (a petabyte), against an upstream that refuses the
        // recipient for good and the notice's recipient for now.
        let refusing = try UpstreamProcess(mode: .plain, extra: [
            "--reject-rcpt", "gone@example.com=550 5.1.1 no such user",
            "--reject-rcpt", "app@acme.example=451 4.3.0 not now",
        ])
        try relay.writeConfig(body: Self.config(port: refusing.port, minFreeSpace: "1000000000000000"))
        try relay.start()
        let spool = SpoolInspector(path: relay.spoolPath)
        let script = "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))\ns.ehlo()\nprint(s.docmd('MAIL','FROM:<x@acme.example>'))"
        let refused = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(relay.port)"])
        #expect(refused.output.contains("452"), "inbound mail is refused below the floor: \(refused.output)")
        #expect(eventually { ((try? spool.deadLetters()) ?? []).count == 1 }, "\(relay.log)")
        #expect(eventually(timeout: 10) {
            ((try? spool.messages()) ?? []).contains { $0.sender == "" && $0.recipients == ["app@acme.example"] }
        }, "the notice is in queue/ though the spool is below min_free_space:\n\(relay.log)")
        relay.kill9()
        // After kill -9, the next start delivers the notice to the sender's upstream.
        let accepting = try UpstreamProcess(mode: .plain)
        try relay.writeConfig(body: Self.config(port: accepting.port, minFreeSpace: "1000000000000000"))
        try relay.start()
        let received = Self.notices(accepting.waitForMessages(1))
        try #require(received.count == 1, "\(relay.log)")
        #expect(received[0].recipients == ["app@acme.example"])
        let parsed = try Self.parse(received[0], in: relay.directory)
        #expect(parsed.recipients.first?["Final-Recipient"] == "rfc822; gone@example.com")
        #expect(parsed.recipients.first?["Status"] == "5.1.1")
        #expect(parsed.original_headers?.contains("Subject: floor") == true)
        #expect(eventually { ((try? spool.messages()) ?? []).isEmpty }, "the notice left the queue: \(relay.log)")
        #expect(((try? spool.deadLetters()) ?? []).count == 1)
        relay.stop()
    }
}
