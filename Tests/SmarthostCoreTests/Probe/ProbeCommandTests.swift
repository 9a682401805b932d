import Foundation
import Testing
@testable import SmarthostCore

/// The built `smarthost test` and `smarthost routes` binaries against a real upstream:
/// exit codes, the printed dialogue, and no password on the terminal.
@Suite struct ProbeCommandTests {
    private let certificates = TestCertificates.shared

    private func writeConfig(port: UInt16, password: String) throws -> String {
        let directory = NSTemporaryDirectory() + "smarthost-probe-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/smarthost.yaml"
        let yaml = """
            hostname: relay.test
            listen: ["127.0.0.1:0"]
            spool: \(directory)/spool
            default:
              host: 127.0.0.1
              port: 9
              tls: none
            host:
              use: default
            orgs:
              acme:
                use: custom
                senders: ["*@acme.example"]
                host: localhost
                port: \(port)
                tls: starttls
                timeout: 5s
                ca_file: \(certificates.caCertificate)
                username: robot
                password: \(password)
                from: alerts@acme.example
                from_name: ACME Robots

            """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func testCommandShowsTheMaskedDialogueAndExitsZeroOrOne() throws {
        let upstream = try ProbeUpstream(mode: "starttls", identity: certificates.localhost,
                                         auth: "robot:\(ProbeRoutes.password)",
                                         extra: ["--reject-rcpt", "nobody@example.test=550 5.1.1 no such user"])
        let config = try writeConfig(port: upstream.port, password: ProbeRoutes.password)
        defer { try? FileManager.default.removeItem(atPath: (config as NSString).deletingLastPathComponent) }
        let binary = RelayProcess.binaryPath

        let ok = try ToolRun.run(binary, ["test", "--config", config, "--org", "acme", "--to", "ops@example.test"])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("route: org layer (org acme has use: custom)"))
        #expect(ok.output.contains("C: STARTTLS\n"))
        #expect(ok.output.contains("C: AUTH PLAIN ********\n"))
        #expect(ok.output.contains("OK: localhost:\(upstream.port) (tls starttls) accepted the test message: 250"))
        #expect(!ok.output.contains(ProbeRoutes.password))
        #expect(try upstream.envelopes().count == 1)

        let refused = try ToolRun.run(binary, ["test", "--config", config, "--org", "acme", "--to", "nobody@example.test"])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("S: 550 5.1.1 no such user"))
        #expect(refused.output.contains("failed at recipient (RCPT TO): RCPT TO rejected: 550 5.1.1 no such user"))
        #expect(!refused.output.contains(ProbeRoutes.password))
    }

    /// A route with fallback hosts: the test tries one host, the first unless `--host`
    /// names another of the route's, and says which.
    @Test func testCommandTriesTheHostItIsGiven() throws {
        let upstream = try ProbeUpstream(mode: "plain")
        let directory = NSTemporaryDirectory() + "smarthost-probe-hosts-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/smarthost.yaml"
        // The primary, 127.0.0.2, has nothing on the upstream's port: refused.
        try """
            hostname: relay.test
            spool: \(directory)/spool
            default:
              host: [127.0.0.2, 127.0.0.1]
              port: \(upstream.port)
              tls: none
              timeout: 5s

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let binary = RelayProcess.binaryPath
        let primary = try ToolRun.run(binary, ["test", "--config", config, "--to", "ops@example.test"])
        #expect(primary.status == 1, "\(primary.output)")
        #expect(primary.output.contains("host: 127.0.0.2 (this test tries only it; the route's others: 127.0.0.1, each with --host)"))
        let fallback = try ToolRun.run(binary, ["test", "--config", config, "--host", "127.0.0.1", "--to", "ops@example.test"])
        #expect(fallback.status == 0, "\(fallback.output)")
        #expect(fallback.output.contains("OK: 127.0.0.1:\(upstream.port)"), "\(fallback.output)")
        let stranger = try ToolRun.run(binary, ["test", "--config", config, "--host", "192.0.2.1", "--to", "ops@example.test"])
        #expect(stranger.status == 64)
        #expect(stranger.output.contains("192.0.2.1 is not a host of this route (its hosts: 127.0.0.2, 127.0.0.1)"), "\(stranger.output)")
    }

    @Test func routesCommandExplainsTheSenderMatch() throws {
        let config = try writeConfig(port: 2525, password: ProbeRoutes.password)
        defer { try? FileManager.default.removeItem(atPath: (config as NSString).deletingLastPathComponent) }
        let run = try ToolRun.run(RelayProcess.binaryPath, ["routes", "--config", config, "--sender", "bob@acme.example"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("org: acme (sender bob@acme.example matches *@acme.example)"))
        #expect(run.output.contains("route: org layer (org acme has use: custom)"))
        #expect(run.output.contains("auth: robot, password ******** (inline)"))
        #expect(!run.output.contains(ProbeRoutes.password))
    }
}

/// A greeting a man-in-the-middle controls reaches `smarthost test`'s output escaped: no
/// terminal escape sequence from the wire is ever printed raw.
@Suite struct ProbeCommandEscapingTests {
    @Test func upstreamRepliesAreEscapedForTheTerminal() throws {
        // A fake: no real server greets with an escape sequence on demand.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", """
            import socket, sys
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
            print(s.getsockname()[1], flush=True)
            c, _ = s.accept()
            c.sendall(b'421 \\x1b]0;owned\\x07 \\x1b[2J go away\\r\\n')
            c.close()
            """]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { server.terminate() }
        let portLine = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(UInt16(portLine.trimmingCharacters(in: .whitespacesAndNewlines)))
        let directory = NSTemporaryDirectory() + "smarthost-escape-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            listen: ["127.0.0.1:0"]
            spool: \(directory)/spool
            default: { host: 127.0.0.1, port: \(port), tls: none, timeout: 5s }
            """.write(toFile: directory + "/c.yaml", atomically: true, encoding: .utf8)
        let run = try ToolRun.run(RelayProcess.binaryPath, ["test", "--config", directory + "/c.yaml", "--to", "a@example.com"])
        #expect(run.status == 1)
        #expect(!run.output.contains("\u{1B}") && !run.output.contains("\u{07}"), "\(run.output)")
        #expect(run.output.contains("\\x1b]0;owned\\x07"), "\(run.output)")
    }
}
