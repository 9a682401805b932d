import Foundation
import Testing
@testable import SmarthostCore

/// OAuth2 upstream AUTH with real parts: the relay fetches tokens from a real HTTPS token
/// endpoint (`oauth_endpoint.py`: client secret, client-assertion and service-account JWTs
/// verified with python3-jwt, refresh tokens, short-lived tokens, counted requests) and
/// presents them with XOAUTH2/OAUTHBEARER to an aiosmtpd upstream that accepts only tokens
/// the endpoint issued and nobody revoked. No secret may appear in any log or transcript.
@Suite(.serialized) struct OAuth2EndToEndTests {
    static let certificates = TestCertificates.shared
    static let mailbox = "alerts@contoso.example"

    static func upstream(_ endpoint: OAuthEndpointProcess, style: String = "microsoft") throws -> UpstreamProcess {
        try UpstreamProcess(mode: .starttls, certificate: (certificates.localhost.certificate, certificates.localhost.key),
                            extra: ["--oauth-state", endpoint.state, "--oauth-style", style])
    }

    /// The oauth2 block: microsoft client secret unless `grant` says otherwise.
    static func oauthBlock(_ endpoint: OAuthEndpointProcess, provider: String = "microsoft", grant: [String]? = nil,
                           mechanism: String? = nil, tokenURL: String? = nil) -> String {
        var lines = ["provider: \(provider)"]
        lines += grant ?? ["client_id: app-1", "client_secret_file: \(endpoint.clientSecretFile)"]
        lines.append("token_url: \(tokenURL ?? endpoint.tokenURL)")
        lines.append("ca_file: \(certificates.caCertificate)")
        if let mechanism { lines.append("mechanism: \(mechanism)") }
        return lines.map { "    " + $0 }.joined(separator: "\n")
    }

    static func configBody(upstreamPort: UInt16, oauth: String) -> String {
        """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        metrics: { listen: "127.0.0.1:0" }
        default:
          host: 127.0.0.1
          port: 9
          tls: none
        host:
          use: custom
          host: localhost
          port: \(upstreamPort)
          tls: starttls
          ca_file: \(certificates.caCertificate)
          timeout: 10s
          username: \(mailbox)
          oauth2:
        \(oauth)
        orgs:
          contoso:
            use: default
        """
    }

    /// No proxy unless a test asks for one: the runner's environment must not route the
    /// loopback token endpoint through something else.
    static func relay(upstreamPort: UInt16, oauth: String, environment: [String: String] = [:]) throws -> RelayProcess {
        var env = ["HTTPS_PROXY": "", "https_proxy": "", "ALL_PROXY": "", "all_proxy": ""]
        env.merge(environment) { $1 }
        let relay = try RelayProcess(configBody: configBody(upstreamPort: upstreamPort, oauth: oauth), environment: env)
        try relay.start()
        return relay
    }

    /// `count` messages in one SMTP session.
    static func send(_ relay: RelayProcess, count: Int = 1, subject: String = "oauth") throws {
        let script = """
        import smtplib, sys
        with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='app.test') as s:
            for i in range(int(sys.argv[2])):
                s.sendmail('app@platform.example', ['rcpt@example.com'],
                           ('From: app@platform.example\\r\\nSubject: %s %d\\r\\n\\r\\nbody\\r\\n' % (sys.argv[3], i)).encode())
        """
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(relay.port)", "\(count)", subject])
        #expect(run.status == 0, "submission failed: \(run.output)")
    }

    /// `/metrics` of a relay started by `relay(…)` (its config serves them on a free port).
    static func scrape(_ relay: RelayProcess) throws -> String {
        let port = try #require(MetricsEndToEndTests.metricsPort(relay.log))
        return try ToolRun.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"]).output
    }

    static func smarthostTest(_ relay: RelayProcess) throws -> ToolRun {
        try ToolRun.run(RelayProcess.binaryPath, ["test", "--config", relay.configPath, "--org", "contoso",
                                                  "--to", "rcpt@example.com"], timeout: 60)
    }

    static func expectNoSecrets(_ endpoint: OAuthEndpointProcess, in texts: [String], _ where: String,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in endpoint.allSecrets {
            for text in texts where text.contains(secret) {
                Issue.record("a secret (\(secret.prefix(6))…) appears in \(`where`)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Waits until the relay has dropped `count` upstream connections (it quits idle ones
    /// after a few seconds), so the next message needs a new connection and a new AUTH.
    static func waitForClosedConnections(_ endpoint: OAuthEndpointProcess, _ count: Int) -> Bool {
        eventually(timeout: 20) { endpoint.upstreamConnectionsClosed >= count }
    }

    // MARK: Cases

    @Test func fiftyMessagesGoOutOnOneToken() throws {
        let endpoint = try OAuthEndpointProcess()
        let upstream = try Self.upstream(endpoint)
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: Self.oauthBlock(endpoint))
        try Self.send(relay, count: 50)
        #expect(upstream.waitForMessages(50, timeout: 60).count == 50)
        #expect(endpoint.requests.count == 1, "\(endpoint.requests)")
        #expect(endpoint.successfulRequests == 1)
        let metrics = try Self.scrape(relay)
        #expect(metrics.contains("smarthost_oauth2_token_fetches_total{provider=\"microsoft\"} 1\n"), "\(metrics)")
        #expect(!metrics.contains("smarthost_oauth2_token_failures_total"))
        for step in ["connect", "tls", "auth"] {
            #expect(metrics.contains("smarthost_upstream_\(step)_seconds_count{upstream=\"localhost:\(upstream.port)\"} "), "\(step): \(metrics)")
        }
        let auth = endpoint.upstreamAuthLog
        #expect(!auth.isEmpty && auth.allSatisfy { $0.contains("mechanism=XOAUTH2") && $0.contains("result=ok") && $0.contains("tls=1") },
                "\(auth)")
        #expect(upstream.received().allSatisfy { $0.authUser == Self.mailbox })
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs], "the relay's log")
    }

    @Test func aTokenNearExpiryIsReplacedBeforeUse() throws {
        // 4 s tokens: the relay stops handing one out before it expires.
        let endpoint = try OAuthEndpointProcess(options: ["--lifetime", "4"])
        let upstream = try Self.upstream(endpoint)
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: Self.oauthBlock(endpoint))
        try Self.send(relay, subject: "first")
        #expect(upstream.waitForMessages(1).count == 1)
        // The relay quits the idle connection after 5 s: by then the first token is spent.
        #expect(Self.waitForClosedConnections(endpoint, 1))
        try Self.send(relay, subject: "second")
        #expect(upstream.waitForMessages(2).count == 2)
        #expect(endpoint.successfulRequests == 2, "\(endpoint.requests)")
        let auth = endpoint.upstreamAuthLog
        #expect(auth.count == 2 && auth.allSatisfy { $0.contains("result=ok") }, "no AUTH may fail: \(auth)")
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs], "the relay's log")
    }

    @Test func aRevokedTokenGetsOneFreshTokenAndTheMessageGoesOut() throws {
        let endpoint = try OAuthEndpointProcess()
        let upstream = try Self.upstream(endpoint, style: "google")
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: Self.oauthBlock(endpoint))
        try Self.send(relay, subject: "first")
        #expect(upstream.waitForMessages(1).count == 1)
        try endpoint.revokeAllTokens()
        #expect(Self.waitForClosedConnections(endpoint, 1))
        try Self.send(relay, subject: "second")
        #expect(upstream.waitForMessages(2).count == 2)
        let results = endpoint.upstreamAuthLog.map { $0.split(separator: " ").first { $0.hasPrefix("result=") } ?? "" }
        #expect(results == ["result=ok", "result=unknown-or-revoked", "result=ok"], "\(endpoint.upstreamAuthLog)")
        #expect(endpoint.successfulRequests == 2, "one re-fetch: \(endpoint.requests)")
        #expect(!relay.log.contains("deferred"), "the retry happens on the same connection")
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs], "the relay's log")
    }

    @Test func endpointDownDefersWithTheReasonThenDelivers() throws {
        let endpoint = try OAuthEndpointProcess()
        let port = endpoint.port
        endpoint.stop()
        let upstream = try Self.upstream(endpoint)
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: Self.oauthBlock(endpoint))
        try Self.send(relay)
        let message = try #require(try DeliveryFailuresEndToEndTests.deferredMessage(relay))
        #expect(try Self.scrape(relay).contains("smarthost_oauth2_token_failures_total{provider=\"microsoft\"} "))
        let reason = message.lastError ?? ""
        #expect(reason.contains("oauth2 token") && reason.contains(endpoint.tokenURL), "\(reason)")
        #expect(reason.lowercased().contains("connect"), "\(reason)")
        #expect(endpoint.upstreamAuthLog.isEmpty, "no connection upstream without a token")
        try endpoint.start(port: port)
        #expect(upstream.waitForMessages(1, timeout: 30).count == 1)
        #expect(try SpoolInspector(path: relay.spoolPath).deadLetters().isEmpty)
        relay.stop()
        #expect(relay.allLogs.contains("route down"))
        Self.expectNoSecrets(endpoint, in: [relay.allLogs], "the relay's log")
    }

    @Test func wrongSecretSaysInvalidClientInTheReasonAndInTest() throws {
        let endpoint = try OAuthEndpointProcess()
        let wrong = endpoint.directory.appendingPathComponent("wrong.secret").path
        try endpoint.writeSecret("not-the-secret-\(UUID().uuidString)\n", to: wrong)
        let upstream = try Self.upstream(endpoint)
        let oauth = Self.oauthBlock(endpoint, grant: ["client_id: app-1", "client_secret_file: \(wrong)"])
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: oauth)
        try Self.send(relay)
        let message = try #require(try DeliveryFailuresEndToEndTests.deferredMessage(relay))
        let reason = message.lastError ?? ""
        #expect(reason.contains("invalid_client") && reason.contains("AADSTS7000215") && reason.contains("HTTP 401"), "\(reason)")
        #expect(!reason.contains("Trace ID"), "only the first line of the description: \(reason)")
        let run = try Self.smarthostTest(relay)
        #expect(run.status != 0)
        #expect(run.output.contains("failed at oauth2 token"), "\(run.output)")
        #expect(run.output.contains("invalid_client") && run.output.contains("hint:"), "\(run.output)")
        #expect(!run.output.contains("AUTH XOAUTH2"), "no AUTH without a token")
        #expect(try SpoolInspector(path: relay.spoolPath).deadLetters().isEmpty)
        relay.stop()
        let secretText = try String(contentsOfFile: wrong, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!relay.allLogs.contains(secretText) && !run.output.contains(secretText))
        Self.expectNoSecrets(endpoint, in: [relay.allLogs, run.output], "logs or the test transcript")
    }

    @Test func aRotatedRefreshTokenIsWrittenBackAndUsedNextTime() throws {
        let endpoint = try OAuthEndpointProcess(options: ["--rotate", "--scope", "mail.send"])
        let upstream = try Self.upstream(endpoint, style: "google")
        let oauth = Self.oauthBlock(endpoint, provider: "generic",
                                    grant: ["client_id: app-1", "client_secret_file: \(endpoint.clientSecretFile)",
                                            "refresh_token_file: \(endpoint.refreshTokenFile)"])
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: oauth)
        try Self.send(relay)
        #expect(upstream.waitForMessages(1).count == 1)
        let written = try String(contentsOfFile: endpoint.refreshTokenFile, encoding: .utf8)
        #expect(written == endpoint.currentRefreshToken + "\n")
        #expect(written != endpoint.initialRefreshToken + "\n")
        let mode = try FileManager.default.attributesOfItem(atPath: endpoint.refreshTokenFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A new process has no cached token: it must refresh with the rotated token.
        let run = try Self.smarthostTest(relay)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("oauth2 token: fetched from \(endpoint.tokenURL)"), "\(run.output)")
        #expect(run.output.contains("AUTH XOAUTH2 ********"), "\(run.output)")
        #expect(endpoint.requests.filter { $0.contains("status=200") }.count == 2, "\(endpoint.requests)")
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs, run.output], "logs or the test transcript")
    }

    @Test func googleServiceAccountWithOAuthBearer() throws {
        let endpoint = try OAuthEndpointProcess()
        let upstream = try Self.upstream(endpoint, style: "google")
        let oauth = Self.oauthBlock(endpoint, provider: "google", grant: ["service_account_file: \(endpoint.serviceAccountFile)"],
                                    mechanism: "oauthbearer")
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: oauth)
        try Self.send(relay)
        #expect(upstream.waitForMessages(1).count == 1)
        let auth = endpoint.upstreamAuthLog
        // The upstream checks the token's subject (domain-wide delegation) against a=.
        #expect(auth == ["mechanism=OAUTHBEARER user=\(Self.mailbox) result=ok tls=1"], "\(auth)")
        #expect(endpoint.requests.first?.contains("grant=jwt_bearer status=200") == true, "\(endpoint.requests)")
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs], "the relay's log")
    }

    @Test func microsoftCertificateCredentialAndTheTestTranscript() throws {
        let endpoint = try OAuthEndpointProcess()
        let upstream = try Self.upstream(endpoint)
        let oauth = Self.oauthBlock(endpoint, grant: ["client_id: app-1", "client_certificate_file: \(endpoint.appCertificate)",
                                                      "client_key_file: \(endpoint.appKey)"])
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: oauth)
        try Self.send(relay)
        #expect(upstream.waitForMessages(1).count == 1)
        #expect(endpoint.requests.first?.contains("grant=client_assertion status=200") == true, "\(endpoint.requests)")
        let run = try Self.smarthostTest(relay)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("C: AUTH XOAUTH2 ********"), "\(run.output)")
        #expect(run.output.contains("oauth2 token: fetched from"), "\(run.output)")
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs, run.output], "logs or the test transcript")
    }

    @Test func tokenFetchThroughAnHTTPSProxy() throws {
        let endpoint = try OAuthEndpointProcess()
        let upstream = try Self.upstream(endpoint)
        let proxy = try TinyProxy(allowPort: endpoint.port)
        let relay = try Self.relay(upstreamPort: upstream.port, oauth: Self.oauthBlock(endpoint),
                                   environment: ["HTTPS_PROXY": "http://127.0.0.1:\(proxy.port)", "NO_PROXY": "", "no_proxy": ""])
        try Self.send(relay)
        #expect(upstream.waitForMessages(1).count == 1)
        #expect(eventually { proxy.log.contains("CONNECT") && proxy.log.contains("\(endpoint.port)") }, "\(proxy.log)")
        relay.stop()
        Self.expectNoSecrets(endpoint, in: [relay.allLogs, proxy.log], "logs")
    }
}

/// Debian's tinyproxy on a loopback port, allowing CONNECT to one port, logging to a file.
final class TinyProxy: @unchecked Sendable {
    let directory: URL
    let port: UInt16
    private let process = Process()

    init(allowPort: UInt16) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let probe = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        port = probe.address.port
        probe.close()
        let config = """
        Port \(port)
        Listen 127.0.0.1
        Timeout 30
        LogFile "\(directory.path)/tinyproxy.log"
        LogLevel Info
        MaxClients 10
        Allow 127.0.0.1
        ConnectPort \(allowPort)
        """
        try config.write(toFile: directory.path + "/tinyproxy.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/tinyproxy")
        process.arguments = ["-d", "-c", directory.path + "/tinyproxy.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let up = eventually(timeout: 10) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        if !up { throw UpstreamProcessError.didNotStart("tinyproxy did not listen on \(port)") }
    }

    var log: String { (try? String(contentsOfFile: directory.path + "/tinyproxy.log", encoding: .utf8)) ?? "" }

    deinit {
        // SIGKILL: tinyproxy inherits the test runner's blocked signal mask, SIGTERM included.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
