import Foundation
import Testing
@testable import SmarthostCore

/// What an operator meets on a real host, with real processes: a fresh install whose secret
/// is not there yet, a second relay on the same spool, a checked reload, queue tools that
/// need only the spool. (`make test-system` does the same inside a real systemd.)
@Suite(.serialized) struct InstalledHostEndToEndTests {
    static let certificates = TestCertificates.shared

    private func smarthost(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolRun {
        let assignments = environment.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        return try ToolRun.run("/bin/sh", ["-c", "\(assignments) exec '\(RelayProcess.binaryPath)' \(quoted)"], timeout: 30)
    }

    private func routeConfig(upstreamPort: UInt16, passwordFile: String) -> String {
        """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: localhost
          port: \(upstreamPort)
          tls: starttls
          ca_file: \(Self.certificates.caCertificate)
          timeout: 10s
          username: relay
          password_file: \(passwordFile)
        """
    }

    @Test func aRouteWithoutItsSecretHoldsMailUntilTheSecretAndAReloadArrive() throws {
        let upstream = try UpstreamProcess(mode: .starttls, certificate: (Self.certificates.localhost.certificate,
                                                                          Self.certificates.localhost.key), auth: "relay:held-secret-91")
        defer { upstream.stop() }
        let credentials = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: credentials) }
        let relay = try RelayProcess(configBody: routeConfig(upstreamPort: upstream.port, passwordFile: "upstream.secret"),
                                     environment: ["CREDENTIALS_DIRECTORY": credentials.path])
        try relay.start()
        defer { relay.stop() }

        // Logged just after the listeners open (start() returns at the first of them).
        #expect(eventually(timeout: 10) { relay.log.contains("credentials missing: default route holds its mail") }, "\(relay.log)")
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "app@example.com", to: ["ops@example.com"],
                                               data: "Subject: before the secret\r\n\r\nheld\r\n")
        #expect(eventually(timeout: 5) { relay.log.contains("route has no credentials: holding its mail") }, "\(relay.log)")
        // Held, not attempted: no AUTH ever reached the upstream, no attempt was recorded.
        #expect(upstream.received().isEmpty && upstream.authLog.isEmpty)
        let list = try smarthost(["queue", "list", "--config", relay.configPath])
        #expect(list.output.split(separator: "\n").count == 1, "\(list.output)")
        #expect(!relay.log.contains("deferred"), "a held message is not a failed attempt: \(relay.log)")

        // systemd's directory form: the file arrives as smarthost_<name>, mode 0440 (ACL mask).
        let secret = credentials.appendingPathComponent("smarthost_upstream.secret").path
        try "held-secret-91\n".write(toFile: secret, atomically: true, encoding: .utf8)
        chmod(secret, 0o440)
        let reload = try smarthost(["reload", "--config", relay.configPath])
        #expect(reload.status == 0, "\(reload.output)")
        let delivered = upstream.waitForMessages(1)
        #expect(delivered.first?.content.contains("Subject: before the secret") == true)
        #expect(delivered.first?.authUser == "relay")
        #expect(!relay.allLogs.contains("held-secret-91"))
    }

    @Test func aSecondRelayOnTheSameSpoolExitsAndChangesNothing() throws {
        let first = try RelayProcess()
        try first.start()
        defer { first.stop() }
        // A message being received by the first relay: its file sits in tmp/ (or spare/).
        let client = try RawSMTPClient(port: first.port)
        _ = client.readReply()
        client.send("EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        _ = client.readReplies(4)
        client.send("Subject: in flight\r\n\r\npart one\r\n")
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: first.spoolPath + "/tmp")) ?? [])

        let secondConfig = first.directory.appendingPathComponent("second.yaml").path
        try """
        listen: ["127.0.0.1:0"]
        spool: \(first.spoolPath)
        default: { host: 127.0.0.1, port: 9, tls: none }
        """.write(toFile: secondConfig, atomically: true, encoding: .utf8)
        let second = try smarthost(["serve", "--config", secondConfig])
        #expect(second.status == 1)
        #expect(second.output.contains("spool \(first.spoolPath) is in use by pid \(first.pid)"), "\(second.output)")
        #expect(!second.output.contains("listening"), "it must not listen: \(second.output)")

        // The first relay's message in progress survived, and it still commits.
        let after = Set((try? FileManager.default.contentsOfDirectory(atPath: first.spoolPath + "/tmp")) ?? [])
        #expect(before.isSubset(of: after))
        client.send("part two\r\n.\r\n")
        #expect(client.readReply().hasPrefix("250 2.0.0 Ok: queued as "))
        let status = try smarthost(["queue", "status", "--config", first.configPath])
        #expect(status.output.contains("daemon running (pid \(first.pid))"), "\(status.output)")
    }

    @Test func reloadReportsTheVerdictAndARefusedFileKeepsTheRunningConfig() throws {
        let relay = try RelayProcess()
        try relay.start()
        defer { relay.stop() }
        let good = try smarthost(["reload", "--config", relay.configPath])
        #expect(good.status == 0 && good.output.contains("reloaded"), "\(good.output)")

        try relay.writeConfig(body: RelayProcess.defaultRoutes + "\nlimits: { max_recipients: many }")
        let bad = try smarthost(["reload", "--config", relay.configPath])
        #expect(bad.status == 1)
        #expect(bad.output.contains("reload refused") && bad.output.contains("limits.max_recipients"), "\(bad.output)")
        #expect(relay.isRunning)
        // The old configuration still serves.
        let client = try RawSMTPClient(port: relay.port)
        #expect(client.readReply().hasPrefix("220 "))
    }

    @Test func queueToolsNeedOnlyTheSpoolKeyNeverTheSecrets() throws {
        let relay = try RelayProcess(configBody: """
        default:
          host: 127.0.0.1
          port: 9
          tls: none
          allow_plaintext_auth: true
          username: u
          password_file: /nonexistent/only-the-service-can-read.secret
        """)
        try relay.start()
        defer { relay.stop() }
        // A config whose other keys are wrong still names the spool.
        let partial = relay.directory.appendingPathComponent("partial.yaml").path
        try "spool: \(relay.spoolPath)\ndefault: { port: not-a-port }\n".write(toFile: partial, atomically: true, encoding: .utf8)
        let list = try smarthost(["queue", "list", "--config", partial])
        #expect(list.status == 0, "\(list.output)")
        let bySpool = try smarthost(["queue", "status", "--spool", relay.spoolPath, "--config", "/nonexistent.yaml"])
        #expect(bySpool.status == 0 && bySpool.output.contains("daemon running"), "\(bySpool.output)")
        #expect(try smarthost(["queue", "list", "--spool", relay.spoolPath, "--timeout", "9223372036854775807"]).status != 0)
    }

    @Test func quarantinedMessagesCanBeListedShownAndReleasedWhenSound() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let spool = try Spool(root: directory.root)
        let sound = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "sound"))
        let torn = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "torn"))
        // A sound file quarantined (as an older relay did for an I/O error), and a torn one.
        try FileManager.default.moveItem(atPath: "\(directory.root)/queue/\(sound)", toPath: "\(directory.root)/quarantine/\(sound)")
        directory.write("quarantine/\(sound).reason", Array("read: Permission denied\n".utf8))
        let tornBytes = directory.bytes("queue/\(torn)")!
        try FileManager.default.removeItem(atPath: "\(directory.root)/queue/\(torn)")
        directory.write("quarantine/\(torn)", Array(tornBytes.prefix(tornBytes.count - 10)))
        directory.write("quarantine/\(torn).reason", Array("end marker missing\n".utf8))

        let list = try smarthost(["queue", "quarantine", "list", "--spool", directory.root])
        #expect(list.output.contains("\(sound)") && list.output.contains("Permission denied"), "\(list.output)")
        #expect(list.output.contains("\(torn)") && list.output.contains("end marker missing"))
        let show = try smarthost(["queue", "quarantine", "show", torn.rawValue, "--spool", directory.root])
        #expect(show.status == 0 && show.output.contains("torn"), "\(show.output)")

        let released = try smarthost(["queue", "quarantine", "release", sound.rawValue, "--spool", directory.root])
        #expect(released.status == 0, "\(released.output)")
        #expect(directory.names("queue").contains(sound.rawValue))
        #expect(!directory.names("quarantine").contains { $0.hasPrefix(sound.rawValue) })
        let refused = try smarthost(["queue", "quarantine", "release", torn.rawValue, "--spool", directory.root])
        #expect(refused.status == 1 && refused.output.contains("still corrupt"), "\(refused.output)")
        #expect(directory.names("quarantine").contains(torn.rawValue))
    }
}
