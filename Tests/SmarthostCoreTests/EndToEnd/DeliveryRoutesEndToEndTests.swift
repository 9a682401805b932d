import Foundation
import Testing
@testable import SmarthostCore

/// The settings model end to end: real upstreams with real TLS and AUTH, a real relay, and
/// the bytes that arrived at each upstream.
@Suite(.serialized) struct DeliveryRoutesEndToEndTests {
    static let certificates = TestCertificates.shared

    static func submit(port: UInt16, from: String, to: [String], data: String) throws {
        let script = """
        import smtplib, sys
        with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='app.test') as s:
            s.sendmail(sys.argv[2], sys.argv[3].split(','), sys.stdin.buffer.read())
        """
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(port)", from, to.joined(separator: ",")],
                                  input: Data(data.utf8))
        #expect(run.status == 0, "submission failed: \(run.output)")
    }

    static func routeYAML(host: String = "localhost", port: UInt16, tls: String, user: String?, password: String?,
                          from: String?, fromName: String?, extra: String = "", indent: String) -> String {
        var lines = ["host: \(host)", "port: \(port)", "tls: \(tls)", "ca_file: \(certificates.caCertificate)", "timeout: 10s"]
        if let user { lines.append("username: \(user)") }
        if let password { lines.append("password: \(password)") }
        if let from { lines.append("from: \(from)") }
        if let fromName { lines.append("from_name: \(fromName)") }
        if !extra.isEmpty { lines.append(extra) }
        return lines.map { indent + $0 }.joined(separator: "\n")
    }

    @Test func orgCustomInheritingOrgAndHostLevelEachLandOnTheirUpstream() throws {
        let orgUpstream = try UpstreamProcess(mode: .starttls, certificate: (Self.certificates.localhost.certificate, Self.certificates.localhost.key), auth: "alerts@acme.example:acme-pass")
        let hostUpstream = try UpstreamProcess(mode: .implicit, certificate: (Self.certificates.localhost.certificate, Self.certificates.localhost.key), auth: "noreply@provider.example:host-pass")
        let config = """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: 9
          tls: none
        host:
          use: custom
        \(Self.routeYAML(port: hostUpstream.port, tls: "implicit", user: "noreply@provider.example", password: "host-pass", from: "noreply@provider.example", fromName: "Orchestrator System Notifications", indent: "  "))
        orgs:
          acme:
            use: custom
            senders: ["*@acme.example"]
        \(Self.routeYAML(port: orgUpstream.port, tls: "starttls", user: "alerts@acme.example", password: "acme-pass", from: "alerts@acme.example", fromName: "ACME Robots", extra: "rewrite_from: replace", indent: "    "))
          globex:
            use: default
        """
        let relay = try RelayProcess(configBody: config)
        try relay.start()

        try Self.submit(port: relay.port, from: "robot@acme.example", to: ["ops@example.com"], data:
            "From: Robot <robot@acme.example>\r\nSubject: acme alert\r\nX-Smarthost-Org: acme\r\n\r\nJob 42 failed.\r\n")
        try Self.submit(port: relay.port, from: "jobs@platform.example", to: ["ops@globex.example"], data:
            "From: Jobs <jobs@platform.example>\r\nSubject: globex alert\r\nX-Smarthost-Org: globex\r\n\r\nRobot 7 is offline.\r\n")
        try Self.submit(port: relay.port, from: "reset@platform.example", to: ["user@example.com"], data:
            "Subject: password recovery\r\n\r\nYour code is 123456.\r\n")
        // Not an org id: a 60-line folded value is ignored (host level) and logged once.
        let folded = (0..<60).map { "acme-\($0)-" + String(repeating: "x", count: 970) }.joined(separator: "\r\n ")
        try Self.submit(port: relay.port, from: "batch@platform.example", to: ["user@example.com"], data:
            "Subject: folded org\r\nX-Smarthost-Org: \(folded)\r\n\r\nNightly batch done.\r\n")

        let atOrg = orgUpstream.waitForMessages(1)
        let atHost = hostUpstream.waitForMessages(3)
        #expect(atOrg.count == 1)
        #expect(atHost.count == 3)

        let acme = try #require(atOrg.first)
        #expect(acme.tls && acme.authUser == "alerts@acme.example")
        #expect(acme.mailFrom == "alerts@acme.example")
        #expect(acme.content.contains("From: ACME Robots <alerts@acme.example>\r\n"))
        #expect(!acme.content.contains("robot@acme.example>\r\nSubject"))
        #expect(!acme.content.lowercased().contains("x-smarthost-org"))
        #expect(acme.content.hasSuffix("\r\n\r\nJob 42 failed.\r\n"))

        let globex = try #require(atHost.first { $0.content.contains("globex alert") })
        #expect(globex.tls && globex.authUser == "noreply@provider.example")
        #expect(globex.mailFrom == "noreply@provider.example")
        #expect(globex.content.contains("From: Jobs <jobs@platform.example>\r\n"), "fill keeps an existing From")
        #expect(!globex.content.lowercased().contains("x-smarthost-org"))

        let reset = try #require(atHost.first { $0.content.contains("password recovery") })
        #expect(reset.content.contains("From: Orchestrator System Notifications <noreply@provider.example>\r\n"))
        #expect(reset.content.hasSuffix("\r\n\r\nYour code is 123456.\r\n"))

        let batch = try #require(atHost.first { $0.content.contains("folded org") })
        #expect(!batch.content.lowercased().contains("x-smarthost-org"))
        let ignored = relay.log.split(separator: "\n").filter { $0.contains("org header ignored") }
        #expect(ignored.count == 1, "once for the message: \(ignored)")
        #expect(relay.log.split(separator: "\n").allSatisfy { $0.utf8.count < 1000 }, "no line carries the header")

        // Credentials only ever crossed the wire inside TLS, and never reached a log line.
        #expect((orgUpstream.authLog + hostUpstream.authLog).allSatisfy { $0.hasPrefix("tls=1") })
        #expect(!orgUpstream.authLog.isEmpty)
        #expect(try eventually { try SpoolInspector(path: relay.spoolPath).messages().isEmpty })
        relay.stop()
        for secret in ["acme-pass", "host-pass"] { #expect(!relay.allLogs.contains(secret)) }
        #expect(relay.allLogs.contains("delivered"))
    }

    @Test func hostUseDefaultLandsOnTheDefaultRoute() throws {
        let defaultUpstream = try UpstreamProcess(mode: .starttls, certificate: (Self.certificates.localhost.certificate, Self.certificates.localhost.key), auth: "apikey:SG.secret-key")
        let config = """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
        \(Self.routeYAML(port: defaultUpstream.port, tls: "starttls", user: "apikey", password: nil, from: "admin@mydomain.example", fromName: "sender mydomain.com", extra: "password_env: TEST_SENDGRID_KEY", indent: "  "))
        host:
          use: default
        """
        let relay = try RelayProcess(configBody: config, environment: ["TEST_SENDGRID_KEY": "SG.secret-key"])
        try relay.start()
        try Self.submit(port: relay.port, from: "licence@platform.example", to: ["admin@customer.example"], data:
            "Subject: licence expires\r\n\r\nRenew soon.\r\n")
        let arrived = defaultUpstream.waitForMessages(1)
        let message = try #require(arrived.first)
        #expect(message.tls && message.authUser == "apikey")
        #expect(message.mailFrom == "admin@mydomain.example")
        #expect(message.content.contains("From: \"sender mydomain.com\" <admin@mydomain.example>\r\n"))
        relay.stop()
        #expect(!relay.allLogs.contains("SG.secret-key"))
    }
}
