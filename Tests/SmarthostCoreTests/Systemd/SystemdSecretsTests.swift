import Foundation
import Glibc
import Testing

/// "Never a secret in a log": a relay with an inline password, a `password_file` (through
/// `$CREDENTIALS_DIRECTORY`, as `LoadCredential=` provides it) and a `password_env`, that
/// delivers, fails AUTH against a real upstream, reloads well and badly and stops. Nothing
/// it printed (stderr, `check-config`, sd_notify) contains any of the passwords.
@Suite(.serialized) struct SystemdSecretsTests {
    static let certificates = TestCertificates.shared
    static let inlineDefault = "inline-Secr3t-A-default"
    static let fileHost = "file-Secr3t-B-host"
    static let envAcme = "env-Secr3t-C-acme"
    static let inlineBeta = "inline-Secr3t-D-beta"
    static let rotatedBeta = "inline-Secr3t-E-rotated"

    static func config(hostPort: UInt16, acmePort: UInt16, betaPort: UInt16, betaPassword: String, betaExtra: String = "") -> String {
        let route = DeliveryRoutesEndToEndTests.routeYAML
        return """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: 9
          tls: starttls
          username: apikey
          password: \(inlineDefault)
        host:
          use: custom
        \(route("localhost", hostPort, "starttls", "noreply@provider.example", nil, nil, nil, "password_file: host.secret", "  "))
        orgs:
          acme:
            use: custom
            senders: ["*@acme.example"]
        \(route("localhost", acmePort, "starttls", "alerts@acme.example", nil, nil, nil, "password_env: ACME_SMTP_PASSWORD", "    "))
          beta:
            use: custom
            senders: ["*@beta.example"]
        \(route("localhost", betaPort, "starttls", "robot@beta.example", betaPassword, nil, nil, betaExtra, "    "))
        """
    }

    @Test func noPasswordIsEverPrinted() throws {
        let identity = (Self.certificates.localhost.certificate, Self.certificates.localhost.key)
        let hostUp = try UpstreamProcess(mode: .starttls, certificate: identity, auth: "noreply@provider.example:\(Self.fileHost)")
        let acmeUp = try UpstreamProcess(mode: .starttls, certificate: identity, auth: "alerts@acme.example:\(Self.envAcme)")
        // Beta's upstream wants another password: every AUTH from the relay is rejected.
        let betaUp = try UpstreamProcess(mode: .starttls, certificate: identity, auth: "robot@beta.example:the-right-one")

        let notify = try FakeNotifySocket()
        let credentials = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: credentials) }
        let secretFile = credentials.appendingPathComponent("host.secret").path
        try (Self.fileHost + "\n").write(toFile: secretFile, atomically: true, encoding: .utf8)
        chmod(secretFile, 0o600)

        let environment = ["ACME_SMTP_PASSWORD": Self.envAcme, "CREDENTIALS_DIRECTORY": credentials.path,
                           "NOTIFY_SOCKET": notify.path]
        let body = Self.config(hostPort: hostUp.port, acmePort: acmeUp.port, betaPort: betaUp.port, betaPassword: Self.inlineBeta)
        let relay = try RelayProcess(configBody: body, environment: environment)
        try relay.start()

        #expect(try SystemdTestSupport.submit(port: relay.port, from: "app@acme.example").hasPrefix("250"))
        #expect(try SystemdTestSupport.submit(port: relay.port, from: "app@platform.example").hasPrefix("250"))
        #expect(try SystemdTestSupport.submit(port: relay.port, from: "app@beta.example").hasPrefix("250"))
        #expect(acmeUp.waitForMessages(1).count == 1)
        #expect(hostUp.waitForMessages(1).count == 1)
        #expect(eventually { relay.log.contains("org=beta") && relay.log.contains("535") }, "AUTH refusal logged:\n\(relay.log)")

        // Good reload with a rotated password, then a bad one (password given twice).
        try relay.writeConfig(body: Self.config(hostPort: hostUp.port, acmePort: acmeUp.port, betaPort: betaUp.port,
                                                betaPassword: Self.rotatedBeta))
        relay.signal(SIGHUP)
        #expect(eventually { relay.log.contains("reloaded") })
        #expect(try SystemdTestSupport.submit(port: relay.port, from: "again@beta.example").hasPrefix("250"))
        try relay.writeConfig(body: Self.config(hostPort: hostUp.port, acmePort: acmeUp.port, betaPort: betaUp.port,
                                                betaPassword: Self.rotatedBeta, betaExtra: "password_env: ACME_SMTP_PASSWORD"))
        relay.signal(SIGHUP)
        #expect(eventually { relay.log.contains("reload refused") })
        #expect(eventually { relay.log.components(separatedBy: "535").count > 2 }, "the rotated password was tried too")

        let check = try ToolRun.run(RelayProcess.binaryPath, ["check-config", "--config", relay.configPath])
        relay.stop()

        let printed = relay.allLogs + check.output + notify.messages.map(\.text).joined(separator: "\n")
        for secret in [Self.inlineDefault, Self.fileHost, Self.envAcme, Self.inlineBeta, Self.rotatedBeta] {
            #expect(!printed.contains(secret), "\(secret) was printed")
        }
        #expect(relay.allLogs.contains("delivered") && relay.allLogs.contains("password given twice"))
        #expect(check.status != 0 && check.output.contains("password given twice"))
    }
}
