import Foundation
import Testing
@testable import SmarthostCore

/// `transport: graph` with real parts: the relay gets tokens from the real test token
/// endpoint (one per tenant, scope checked: Graph's default) and POSTs `sendMail` through
/// libcurl to `graph_endpoint.py` over HTTPS with the test CA, which checks that the bearer
/// token is one the mailbox's own tenant issued, decodes the base64 MIME and keeps it.
/// What each message gets (202, 429 + Retry-After, 401, 403, 400 …) is scripted per message.
@Suite(.serialized) struct GraphEndToEndTests {
    static let certificates = TestCertificates.shared
    static let contoso = "alerts@contoso.example"
    static let fabrikam = "noreply@fabrikam.example"
    static let graphScope = ["--scope", "https://graph.microsoft.com/.default"]

    static func orgBlock(_ id: String, mailbox: String, tenant: OAuthEndpointProcess, graph: GraphEndpointProcess) -> String {
        """
          \(id):
            use: custom
            transport: graph
            graph_url: \(graph.url)
            ca_file: \(certificates.caCertificate)
            timeout: 10s
            username: \(mailbox)
            oauth2:
              provider: microsoft
              client_id: app-1
              client_secret_file: \(tenant.clientSecretFile)
              token_url: \(tenant.tokenURL)
              ca_file: \(certificates.caCertificate)
        """
    }

    static func relay(orgs: [String]) throws -> RelayProcess {
        let body = """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: 9
          tls: none
        host:
          use: default
        orgs:
        \(orgs.joined(separator: "\n"))
        """
        let relay = try RelayProcess(configBody: body, environment: ["HTTPS_PROXY": "", "https_proxy": "", "ALL_PROXY": "", "all_proxy": ""])
        try relay.start()
        return relay
    }

    /// Sends `message` (CRLF text) over SMTP with this envelope.
    static func submit(_ relay: RelayProcess, from: String, to: [String], message: String) throws {
        let script = """
        import smtplib, sys
        with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='app.test') as s:
            s.sendmail(sys.argv[2], sys.argv[3].split(','), sys.stdin.buffer.read())
        """
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(relay.port)", from, to.joined(separator: ",")],
                                  input: Data(message.utf8))
        #expect(run.status == 0, "submission failed: \(run.output)")
    }

    static func message(org: String, id: String, script: String? = nil, to: String = "ops@example.com",
                        cc: String? = nil) -> String {
        var lines = ["From: app@\(org).example", "To: Ops Team <\(to)>"]
        if let cc { lines.append("Cc: \(cc)") }
        lines += ["Subject: graph \(id)", "Message-ID: <\(id)@app.test>", "X-Smarthost-Org: \(org)"]
        if let script { lines.append("X-Graph-Script: \(script)") }
        return (lines + ["", "body of \(id)", ".leading dot stays", ""]).joined(separator: "\r\n")
    }

    static func queueJSON(_ relay: RelayProcess) throws -> [[String: Any]] {
        let run = try ToolRun.run(RelayProcess.binaryPath, ["queue", "list", "--json", "--config", relay.configPath], timeout: 30)
        let data = Data(run.output.utf8)
        if let array = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] { return array }
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let messages = object["messages"] as? [[String: Any]] { return messages }
        return []
    }

    // MARK: Cases

    @Test func theMIMEGraphGetsIsTheMessageWithoutTheOrgHeaderAndWithBccForUnnamedRecipients() throws {
        let tenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: tenant])
        let relay = try Self.relay(orgs: [Self.orgBlock("contoso", mailbox: Self.contoso, tenant: tenant, graph: graph)])
        let sent = Self.message(org: "contoso", id: "bytes-1", cc: "\"Smith, Ann\" <ann@example.com>")
        try Self.submit(relay, from: "app@contoso.example", to: ["ops@example.com", "ANN@example.com", "blind@example.net"],
                        message: sent)
        let received = try #require(graph.waitForMessages(1).first)
        let text = String(decoding: received, as: UTF8.self)
        // The relay adds its Received: line first; after it, the client's bytes minus the org
        // header, plus Bcc: for the one recipient no header names.
        let afterReceived = text.components(separatedBy: "\r\n").drop { !$0.hasPrefix("From: ") }.joined(separator: "\r\n")
        let expected = sent.replacingOccurrences(of: "X-Smarthost-Org: contoso\r\n", with: "")
            .replacingOccurrences(of: "\r\n\r\nbody", with: "\r\nBcc: blind@example.net\r\n\r\nbody")
        #expect(afterReceived == expected)
        #expect(text.hasPrefix("Received: "))
        #expect(graph.requests(status: 202).count == 1 && graph.requests.count == 1, "\(graph.requests)")
        #expect(eventually { (try? SpoolInspector(path: relay.spoolPath).messages().isEmpty) == true })
        relay.stop()
        #expect(relay.allLogs.contains("Graph sendMail: 202 Accepted"), "\(relay.allLogs)")
        for secret in tenant.allSecrets { #expect(!relay.allLogs.contains(secret)) }
    }

    @Test func a429DefersByRetryAfterExactlyAndThenDelivers() throws {
        let tenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: tenant])
        let relay = try Self.relay(orgs: [Self.orgBlock("contoso", mailbox: Self.contoso, tenant: tenant, graph: graph)])
        try Self.submit(relay, from: "app@contoso.example", to: ["ops@example.com"],
                        message: Self.message(org: "contoso", id: "throttled-1", script: "429:30,202"))
        #expect(eventually { graph.requests(status: 429).count == 1 })
        let throttledAt = try #require(Double(GraphEndpointProcess.field("t", in: graph.requests(status: 429)[0]) ?? ""))
        var next: Int64 = 0
        #expect(eventually {
            let entry = (try? Self.queueJSON(relay))?.first
            next = (entry?["next_attempt_at"] as? NSNumber)?.int64Value ?? 0
            return next > 0
        })
        // retry_min/max are 1 s/2 s: only Retry-After puts the next attempt 30 s out.
        #expect(abs(Double(next) - (throttledAt + 30)) <= 1.5, "next attempt \(next), 429 at \(throttledAt)")
        #expect(graph.requests.count == 1, "nothing more is sent before Retry-After: \(graph.requests)")
        #expect(relay.log.contains("Retry-After 30s"), "\(relay.log)")
        relay.stop()
    }

    @Test func a401FetchesAFreshTokenOnceAndDelivers() throws {
        let tenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: tenant])
        let relay = try Self.relay(orgs: [Self.orgBlock("contoso", mailbox: Self.contoso, tenant: tenant, graph: graph)])
        try Self.submit(relay, from: "app@contoso.example", to: ["ops@example.com"],
                        message: Self.message(org: "contoso", id: "stale-1", script: "401,202"))
        #expect(graph.waitForMessages(1).count == 1)
        #expect(graph.requests.map { GraphEndpointProcess.field("status", in: $0) ?? "" } == ["401", "202"], "\(graph.requests)")
        #expect(tenant.successfulRequests == 2, "one token, then a fresh one: \(tenant.requests)")
        relay.stop()
    }

    @Test func a403DownsTheRouteAndKeepsTheMessageQueued() throws {
        let tenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: tenant])
        let relay = try Self.relay(orgs: [Self.orgBlock("contoso", mailbox: Self.contoso, tenant: tenant, graph: graph)])
        try Self.submit(relay, from: "app@contoso.example", to: ["ops@example.com"],
                        message: Self.message(org: "contoso", id: "denied-1", script: "403"))
        #expect(eventually { graph.requests(status: 403).count >= 2 }, "retried, not given up: \(graph.requests)")
        let spool = SpoolInspector(path: relay.spoolPath)
        #expect(try spool.deadLetters().isEmpty)
        let queued = try spool.messages()
        #expect(queued.count == 1 && (queued.first?.lastError ?? "").contains("ErrorAccessDenied"), "\(queued)")
        relay.stop()
        #expect(relay.allLogs.contains("route down"), "\(relay.allLogs)")
    }

    @Test func an400InvalidRecipientsIsADeadLetterWithGraphsCodeAndMessage() throws {
        let tenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: tenant])
        let relay = try Self.relay(orgs: [Self.orgBlock("contoso", mailbox: Self.contoso, tenant: tenant, graph: graph)])
        try Self.submit(relay, from: "app@contoso.example", to: ["ops@example.com"],
                        message: Self.message(org: "contoso", id: "bad-1", script: "400"))
        let spool = SpoolInspector(path: relay.spoolPath)
        #expect(eventually { ((try? spool.deadLetters()) ?? []).count == 1 })
        let failure = try spool.deadLetters().first?.failure ?? ""
        #expect(failure.contains("ErrorInvalidRecipients") && failure.contains("At least one recipient isn't valid"), "\(failure)")
        // Once: a dead letter is not retried (the relay's bounce to the sender may follow).
        #expect(graph.requests.filter { $0.contains("msgid=<bad-1@app.test>") }.count == 1, "\(graph.requests)")
        relay.stop()
    }

    @Test func twoTenantsOnOneGraphURLNeverCrossTokens() throws {
        let contosoTenant = try OAuthEndpointProcess(options: Self.graphScope)
        let fabrikamTenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: contosoTenant, Self.fabrikam: fabrikamTenant])
        let relay = try Self.relay(orgs: [
            Self.orgBlock("contoso", mailbox: Self.contoso, tenant: contosoTenant, graph: graph),
            Self.orgBlock("fabrikam", mailbox: Self.fabrikam, tenant: fabrikamTenant, graph: graph),
        ])
        for index in 0..<6 {
            let org = index % 2 == 0 ? "contoso" : "fabrikam"
            try Self.submit(relay, from: "app@\(org).example", to: ["ops@example.com"],
                            message: Self.message(org: org, id: "tenant-\(index)"))
        }
        #expect(graph.waitForMessages(6).count == 6)
        // The endpoint answers 401 to a token of the other tenant: none came.
        #expect(graph.requests(status: 401).isEmpty, "\(graph.requests)")
        #expect(graph.requests.filter { $0.contains("mailbox=\(Self.contoso)") }.count == 3)
        #expect(graph.requests.filter { $0.contains("mailbox=\(Self.fabrikam)") }.count == 3)
        #expect(contosoTenant.successfulRequests == 1 && fabrikamTenant.successfulRequests == 1)
        relay.stop()
    }

    /// A burst over the endpoint's concurrency (2 here, 4 at Graph) meets 429s with
    /// Retry-After: every message arrives exactly once, the 429s are deferrals, none is lost.
    @Test func aBurstOverTheConcurrencyLimitIsThrottledAndEveryMessageArrivesOnce() throws {
        let tenant = try OAuthEndpointProcess(options: Self.graphScope)
        let graph = try GraphEndpointProcess(tenants: [Self.contoso: tenant], options: ["--concurrency", "2", "--delay", "0.3"])
        let relay = try Self.relay(orgs: [Self.orgBlock("contoso", mailbox: Self.contoso, tenant: tenant, graph: graph)])
        let count = 20
        for index in 0..<count {
            try Self.submit(relay, from: "app@contoso.example", to: ["ops@example.com"],
                            message: Self.message(org: "contoso", id: "burst-\(index)"))
        }
        let received = graph.waitForMessages(count, timeout: 90)
        let ids = received.map { String(decoding: $0, as: UTF8.self) }.compactMap { text in
            text.components(separatedBy: "\r\n").first { $0.hasPrefix("Message-ID: ") }
        }
        #expect(ids.count == count && Set(ids).count == count, "every message once: \(ids.count) received, \(Set(ids).count) distinct")
        let throttled = graph.requests(status: 429).count
        #expect(throttled > 0, "the burst should meet the endpoint's limit: \(graph.requests)")
        relay.stop()
        let deferrals = relay.allLogs.components(separatedBy: "\n").filter { $0.contains("deferred") && $0.contains("Graph throttled") }.count
        #expect(deferrals == throttled, "each 429 is one deferral")
        print("graph run: messages=\(count) received=\(ids.count) duplicates=\(ids.count - Set(ids).count) 429s=\(throttled) deferrals=\(deferrals) requests=\(graph.requests.count)")
    }
}
