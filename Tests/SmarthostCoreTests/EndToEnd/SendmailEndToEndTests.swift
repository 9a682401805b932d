import Foundation
import Testing
@testable import SmarthostCore

/// The relay as the machine's MTA: real callers from Debian packages (bsd-mailx, PHP's
/// mail(), git send-email, Python smtplib over `sendmail -bs`, cron) run our binary as
/// `sendmail` — a link named so, as `make install` makes — and each message is checked at
/// an aiosmtpd upstream behind a real relay.
@Suite(.serialized) struct SendmailEndToEndTests {
    /// A relay delivering to a plain aiosmtpd upstream, and a directory holding `sendmail`
    /// and `mailq` links to the binary plus a config for them that names the relay's port.
    final class Setup {
        let upstream: UpstreamProcess
        let relay: RelayProcess
        let bin: URL
        /// Only `listen:` matters to sendmail; the route's secret is never looked up.
        let submitConfig: String

        /// `listen`: the relay's addresses; a `unix:` one is also named in the submit config.
        init(upstreamPort: UInt16? = nil, relayLimits: String = "", listen: [String] = ["127.0.0.1:0"]) throws {
            upstream = try UpstreamProcess(mode: .plain)
            relay = try RelayProcess(configBody: """
            \(relayLimits)
            queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
            default:
              host: 127.0.0.1
              port: \(upstreamPort ?? upstream.port)
              tls: none
            host:
              use: default
            """, listen: listen)
            try relay.start()
            bin = relay.directory.appendingPathComponent("bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            for name in ["sendmail", "mailq"] {
                try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent(name).path,
                                                           withDestinationPath: RelayProcess.binaryPath)
            }
            submitConfig = relay.directory.appendingPathComponent("submit.yaml").path
            let unix = listen.filter { $0.hasPrefix("unix:") }.map { ", \"\($0)\"" }.joined()
            try """
            listen: ["127.0.0.1:\(relay.port)"\(unix)]
            spool: \(relay.spoolPath)
            default: { host: smtp.example.com, port: 587, tls: starttls, username: u, password_env: SMARTHOST_TEST_UNSET }
            """.write(toFile: submitConfig, atomically: true, encoding: .utf8)
        }

        var sendmail: String { bin.appendingPathComponent("sendmail").path }
        var mailq: String { bin.appendingPathComponent("mailq").path }
        /// For callers that cannot pass options: the relay through the environment.
        var environment: [String: String?] { ["SMARTHOST_SUBMIT": "127.0.0.1:\(relay.port)"] }

        func oneMessage() throws -> UpstreamProcess.Received {
            let received = upstream.waitForMessages(1)
            try #require(received.count == 1, "upstream got \(received.count) messages; relay log:\n\(relay.log)")
            return received[0]
        }
    }

    /// The header field `name` of an upstream message (first occurrence), unfolded.
    static func header(_ name: String, in content: String) -> String? {
        let head = content.components(separatedBy: "\r\n\r\n").first ?? ""
        var fields: [String] = []
        for line in head.components(separatedBy: "\r\n") {
            if line.hasPrefix(" ") || line.hasPrefix("\t"), !fields.isEmpty { fields[fields.count - 1] += line } else { fields.append(line) }
        }
        let prefix = name.lowercased() + ":"
        return fields.first { $0.lowercased().hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces) }
    }

    static func body(of content: String) -> String {
        guard let range = content.range(of: "\r\n\r\n") else { return "" }
        return String(content[range.upperBound...])
    }

    static func expectOnlyCRLF(_ content: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(content.utf8)
        let bare = bytes.indices.contains { bytes[$0] == 10 && ($0 == 0 || bytes[$0 - 1] != 13) }
        #expect(!bare, "a bare LF reached the upstream", sourceLocation: sourceLocation)
    }

    @Test func bsdMailxSendsThroughTheRelay() throws {
        let setup = try Setup()
        let rc = setup.relay.directory.appendingPathComponent("mailrc").path
        try "set sendmail=\(setup.sendmail)\n".write(toFile: rc, atomically: true, encoding: .utf8)
        var environment = setup.environment
        environment["MAILRC"] = rc
        let run = try ToolRun.run("/usr/bin/bsd-mailx", ["-s", "mailx subject", "ops@example.com"],
                                  input: Data("first line\nsecond line\n".utf8), environment: environment)
        #expect(run.status == 0, "\(run.output)")
        let message = try setup.oneMessage()
        #expect(message.recipients == ["ops@example.com"])
        #expect(Self.header("Subject", in: message.content) == "mailx subject")
        #expect(Self.body(of: message.content) == "first line\r\nsecond line\r\n")
        #expect(Self.header("Message-ID", in: message.content)?.hasPrefix("<") == true, "sendmail adds a Message-ID")
        #expect(Self.header("Date", in: message.content) != nil && Self.header("From", in: message.content) != nil)
        Self.expectOnlyCRLF(message.content)
        setup.relay.stop()
    }

    @Test func phpMailWithDashTAndDashI() throws {
        let setup = try Setup()
        // php.ini's sendmail_path, as Debian's php-cli documents it: "sendmail -t -i".
        let script = """
        exit(mail("php@example.com", "PHP subject", "Line one\\nLine two\\n.\\nafter the dot", \
        "From: App <app@acme.example>\\r\\nCc: cc@example.com\\r\\nBcc: hidden@example.com") ? 0 : 1);
        """
        let run = try ToolRun.run("/usr/bin/php", ["-n", "-d", "sendmail_path=\(setup.sendmail) -t -i -C \(setup.submitConfig)",
                                                   "-r", script])
        #expect(run.status == 0, "\(run.output)")
        let message = try setup.oneMessage()
        #expect(Set(message.recipients) == ["php@example.com", "cc@example.com", "hidden@example.com"])
        #expect(Self.header("From", in: message.content) == "App <app@acme.example>")
        #expect(Self.header("Bcc", in: message.content) == nil, "Bcc is removed")
        #expect(!message.content.contains("hidden@example.com"))
        #expect(Self.body(of: message.content) == "Line one\r\nLine two\r\n.\r\nafter the dot\r\n", "-i keeps the dot line")
        Self.expectOnlyCRLF(message.content)
        setup.relay.stop()
    }

    @Test func gitSendEmailWithSendmailCmd() throws {
        let setup = try Setup()
        let repo = setup.relay.directory.appendingPathComponent("repo").path
        let git = ["-c", "user.name=Dev Eloper", "-c", "user.email=dev@acme.example"]
        #expect(try ToolRun.run("/usr/bin/git", ["init", "-q", repo]).status == 0)
        try "hello from a patch\n".write(toFile: repo + "/file.txt", atomically: true, encoding: .utf8)
        #expect(try ToolRun.run("/usr/bin/git", git + ["-C", repo, "add", "file.txt"]).status == 0)
        #expect(try ToolRun.run("/usr/bin/git", git + ["-C", repo, "commit", "-q", "-m", "Add file.txt"]).status == 0)
        let patches = setup.relay.directory.appendingPathComponent("patches").path
        #expect(try ToolRun.run("/usr/bin/git", ["-C", repo, "format-patch", "--root", "-o", patches]).status == 0)
        let patch = try #require(try FileManager.default.contentsOfDirectory(atPath: patches).first)
        let run = try ToolRun.run("/usr/bin/git", git + [
            "-C", repo, "send-email", "--sendmail-cmd=\(setup.sendmail) -C \(setup.submitConfig)",
            "--to=list@example.com", "--envelope-sender=dev@acme.example", "--confirm=never", "--quiet",
            patches + "/" + patch,
        ])
        #expect(run.status == 0, "\(run.output)")
        let message = try setup.oneMessage()
        #expect(message.mailFrom == "dev@acme.example")
        #expect(message.recipients.contains("list@example.com"))
        #expect(Self.header("Subject", in: message.content) == "[PATCH] Add file.txt")
        #expect(message.content.contains("\r\n+hello from a patch\r\n"))
        Self.expectOnlyCRLF(message.content)
        setup.relay.stop()
    }

    @Test func pythonSmtplibSpeaksSMTPThroughDashBs() throws {
        let setup = try Setup()
        // smtplib's dialogue over a socket pair whose other end is sendmail -bs's stdin/stdout.
        let script = """
        import smtplib, socket, subprocess, sys
        ours, theirs = socket.socketpair()
        child = subprocess.Popen([sys.argv[1], "-bs", "-C", sys.argv[2]], stdin=theirs, stdout=theirs)
        theirs.close()
        class OverStdio(smtplib.SMTP):
            def connect(self, host="", port=0, source_address=None):
                self.sock = ours
                return self.getreply()
        s = OverStdio()
        print("greeting", s.connect()[0])
        s.ehlo("app.test")
        print("queued", s.sendmail("app@acme.example", ["py@example.com"], b"Subject: over -bs\\r\\n\\r\\nHello via stdio.\\r\\n"))
        s.quit()
        print("exit", child.wait(timeout=20))
        """
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, setup.sendmail, setup.submitConfig])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("greeting 220"), "\(run.output)")
        #expect(run.output.contains("exit 0"), "\(run.output)")
        let message = try setup.oneMessage()
        #expect(message.mailFrom == "app@acme.example" && message.recipients == ["py@example.com"])
        #expect(message.helo == "relay.test")
        #expect(Self.body(of: message.content) == "Hello via stdio.\r\n")
        setup.relay.stop()
    }

    static var canRunCron: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/cron")
    }

    /// Debian's cron mails a job's output with `/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME
    /// -oem`, a path built into it. In a private mount namespace our sendmail is bound over
    /// that path, and /etc/crontab, /etc/cron.d and /run are private, so the host's cron
    /// configuration and its MTA are never touched; an @reboot job runs at once.
    @Test(.enabled(if: canRunCron, "needs root, unshare(1) and cron"))
    func cronMailsAJobsOutput() throws {
        let setup = try Setup()
        let dir = setup.relay.directory.path
        let wrapper = dir + "/sendmail-for-cron"
        try """
        #!/bin/sh
        echo "$@" > \(dir)/cron-args
        \(setup.sendmail) -C \(setup.submitConfig) "$@"
        echo $? > \(dir)/cron-sendmail-status
        """.write(toFile: wrapper, atomically: true, encoding: .utf8)
        try FileManager.default.createFile(atPath: dir + "/empty-crontab", contents: Data())
        let script = """
        set -e
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /etc/cron.d
        mount -t tmpfs tmpfs /var/spool/cron
        mkdir -p /var/spool/cron/crontabs
        mount --bind \(dir)/empty-crontab /etc/crontab
        mount --bind \(wrapper) /usr/sbin/sendmail
        printf 'MAILTO=ops@example.com\\n@reboot root echo cron-output-marker; echo second line\\n' > /etc/cron.d/smarthosttest
        /usr/sbin/cron -f &
        cron=$!
        for i in $(seq 1 300); do [ -e \(dir)/cron-sendmail-status ] && break; sleep 0.1; done
        kill $cron
        wait $cron || true
        """
        chmod(wrapper, 0o755)
        let run = try ToolRun.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script], timeout: 60)
        #expect(run.status == 0, "\(run.output)")
        let status = try? String(contentsOfFile: dir + "/cron-sendmail-status", encoding: .utf8)
        #expect(status?.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "cron's sendmail exit status")
        let arguments = (try? String(contentsOfFile: dir + "/cron-args", encoding: .utf8)) ?? ""
        #expect(arguments.contains("-FCronDaemon") && arguments.contains("-oem"), "cron's own flags: \(arguments)")
        let message = try setup.oneMessage()
        #expect(message.recipients == ["ops@example.com"])
        #expect(Self.header("Subject", in: message.content)?.contains("echo cron-output-marker") == true)
        #expect(Self.body(of: message.content) == "cron-output-marker\r\nsecond line\r\n")
        Self.expectOnlyCRLF(message.content)
        setup.relay.stop()
    }

    /// With the relay down the message goes to the maildrop (exit 0, `MaildropEndToEndTests`);
    /// only when there is no maildrop either is it 75 with one line. (This test pinned 75
    /// with the maildrop present: issue 19's lost mail.)
    @Test func exitsTempfailWithOneLineWhenTheRelayIsDownAndThereIsNoMaildrop() throws {
        let setup = try Setup()
        setup.relay.stop()
        let queued = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig, "ops@example.com"], input: Data("Subject: x\n\ny\n".utf8))
        #expect(queued.status == 0 && queued.output.isEmpty, "\(queued.output)")
        try FileManager.default.removeItem(atPath: setup.relay.spoolPath + "/maildrop")
        let run = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig, "ops@example.com"], input: Data("Subject: x\n\ny\n".utf8))
        #expect(run.status == 75)
        #expect(run.output.hasPrefix("sendmail: cannot connect to the relay at 127.0.0.1:\(setup.relay.port): Connection refused; "
            + "and cannot queue it locally: open \(setup.relay.spoolPath)/maildrop/."), "\(run.output)")
        #expect(run.output.hasSuffix(".tmp: No such file or directory\n") && run.output.split(separator: "\n").count == 1)
        let stdio = try ToolRun.run(setup.sendmail, ["-bs", "-C", setup.submitConfig], input: Data("EHLO x\r\n".utf8))
        #expect(stdio.status == 75)
        #expect(stdio.output.hasPrefix("421 4.3.0 cannot connect to the relay"), "an SMTP caller hears SMTP: \(stdio.output)")
        #expect(setup.upstream.received().isEmpty)
    }

    /// 8-bit content goes with BODY=8BITMIME (the relay advertises it) and arrives as sent.
    @Test func eightBitBodyArrivesUnchanged() throws {
        let setup = try Setup()
        let run = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig, "-i", "ops@example.com"],
                                  input: Data("Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\nContent-Type: text/plain; charset=utf-8\n\nGrüße aus Köln\n".utf8))
        #expect(run.status == 0, "\(run.output)")
        let message = try setup.oneMessage()
        #expect(Self.body(of: message.content) == "Grüße aus Köln\r\n")
        setup.relay.stop()
    }

    @Test func usageAndDataErrors() throws {
        let setup = try Setup()
        let noRecipient = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig], input: Data("x\n".utf8))
        #expect(noRecipient.status == 64, "\(noRecipient.output)")
        #expect(try ToolRun.run(setup.sendmail, ["-Z"], input: Data()).status == 64)
        // The relay's own limit refuses the content: 552 is a data error, and nothing is queued.
        try setup.relay.writeConfig(body: "limits: { max_message_size: 1KiB }\n" + RelayProcess.defaultRoutes,
                                    listen: ["127.0.0.1:\(setup.relay.port)"])
        setup.relay.signal(SIGHUP)
        #expect(eventually(timeout: 10) { setup.relay.log.contains("reloaded") })
        let big = "Subject: big\n\n" + String(repeating: "0123456789\n", count: 200)
        let tooBig = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig, "ops@example.com"], input: Data(big.utf8))
        #expect(tooBig.status == 65, "\(tooBig.output)")
        #expect(tooBig.output.contains("552 5.3.4"), "\(tooBig.output)")
        setup.relay.stop()
    }

    /// `452 4.5.3` past the relay's max_recipients: the rest go in a second transaction
    /// (RFC 5321 §4.5.3.1.10), and every recipient gets the message once.
    @Test func recipientsPastTheRelaysLimitGoInAnotherTransaction() throws {
        let setup = try Setup(relayLimits: "limits: { max_recipients: 2 }")
        let run = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig, "a@example.com", "b@example.com", "c@example.com"],
                                  input: Data("Subject: three\n\nto three\n".utf8))
        #expect(run.status == 0, "\(run.output)")
        let received = setup.upstream.waitForMessages(2)
        #expect(received.map(\.recipients).sorted { $0.count > $1.count } == [["a@example.com", "b@example.com"], ["c@example.com"]])
        #expect(Set(received.map { Self.header("Message-ID", in: $0.content) }).count == 1, "the same message twice")
        setup.relay.stop()
    }

    @Test func mailqListsTheQueue() throws {
        // Port 9 refuses: accepted mail stays queued.
        let setup = try Setup(upstreamPort: 9)
        let empty = try ToolRun.run(setup.mailq, ["-C", setup.submitConfig])
        #expect(empty.status == 0)
        #expect(empty.output == "Mail queue is empty\n")
        let run = try ToolRun.run(setup.sendmail, ["-C", setup.submitConfig, "-f", "app@acme.example", "ops@example.com"],
                                  input: Data("Subject: waits\n\nbody\n".utf8))
        #expect(run.status == 0, "\(run.output)")
        let queued = try SpoolInspector(path: setup.relay.spoolPath).messages()
        let id = try #require(queued.first?.id)
        for listing in [try ToolRun.run(setup.mailq, ["-C", setup.submitConfig]),
                        try ToolRun.run(setup.sendmail, ["-bp", "-C", setup.submitConfig])] {
            #expect(listing.status == 0, "\(listing.output)")
            #expect(listing.output.split(separator: "\n").contains { $0.hasPrefix(id) }, "\(listing.output)")
        }
        setup.relay.stop()
    }

    /// `make install` links sendmail and mailq to the binary; run through the links, the
    /// binary takes their personality from argv[0].
    @Test func makeInstallLinksSendmailAndMailq() throws {
        let stage = try SystemdUnitFileTests.stage()
        defer { try? FileManager.default.removeItem(at: stage) }
        let run = try SystemdUnitFileTests.install(into: stage)
        try #require(run.status == 0, "make install: \(run.output)")
        let fm = FileManager.default
        #expect(try fm.destinationOfSymbolicLink(atPath: stage.path + "/usr/sbin/sendmail") == "../bin/smarthost")
        #expect(try fm.destinationOfSymbolicLink(atPath: stage.path + "/usr/bin/mailq") == "smarthost")
        let mailq = try ToolRun.run(stage.path + "/usr/bin/mailq", ["-C", "/nonexistent/smarthost.yaml"],
                                    environment: ["SMARTHOST_SUBMIT": nil])
        #expect(mailq.status == 69 && mailq.output.hasPrefix("mailq: no spool at "), "\(mailq.output)")
        let usage = try ToolRun.run(stage.path + "/usr/sbin/sendmail", ["-bd"])
        #expect(usage.status == 64 && usage.output.hasPrefix("sendmail: -bd is not supported"), "\(usage.output)")
    }
}
