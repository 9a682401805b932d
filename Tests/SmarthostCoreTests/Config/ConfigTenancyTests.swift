import Testing
@testable import SmarthostCore

/// `org_header_trust`, `orgs.<id>.clients` and `unix:` listeners: what loads, and every error
/// with its line.
@Suite struct ConfigTenancyTests {
    private func onlyIssue(_ yaml: String) -> ConfigIssue? {
        let issues = ConfigTestSupport.issues(yaml)
        #expect(issues.count == 1, "expected one issue, got \(issues)")
        return issues.first
    }

    @Test func defaultsKeepTodaysBehaviour() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal + "\norgs:\n  acme:\n    senders: [\"*@acme.example\"]")
        #expect(config.orgHeaderTrust == .any)
        #expect(config.org("acme")?.clients == nil)
        #expect(OrgTenancy(config: config).isOpen)
    }

    @Test func trustClientsAndUnixListenerLoad() throws {
        let yaml = """
            listen: ["127.0.0.1:25", "unix:/run/smarthost/smtp.sock"]
            org_header_trust: senders
            """ + "\n" + ConfigTestSupport.minimal + """

            orgs:
              acme:
                senders: ["*@acme.example"]
                clients: ["127.0.0.2", "10.1.0.0/16", "::1", "uid:1001", "user:root", "user:nobody"]
            """
        let config = try ConfigTestSupport.parse(yaml)
        #expect(config.orgHeaderTrust == .senders)
        #expect(config.listen.map(\.description) == ["127.0.0.1:25", "unix:/run/smarthost/smtp.sock"])
        #expect(config.listen[1].unixPath == "/run/smarthost/smtp.sock")
        let clients = try #require(config.org("acme")?.clients)
        #expect(clients.map(\.description) == ["127.0.0.2/32", "10.1.0.0/16", "::1/128", "uid:1001",
                                               "user:root (uid 0)", "user:nobody (uid 65534)"])
        // A Unix socket is local: no "reachable from the network" warning. The loopback rules
        // do warn (issue 19: any local user meets them); that is ConfigTenancyWarningsTests'.
        #expect(config.warnings.map(\.keyPath) == ["orgs.acme.clients[0]", "orgs.acme.clients[2]"], "\(config.warnings)")
        let report = ConfigReport.render(config)
        #expect(report.contains("listen: 127.0.0.1:25, unix:/run/smarthost/smtp.sock"))
        #expect(report.contains("org header: X-Smarthost-Org, trust senders"))
        #expect(report.contains("    clients: only 127.0.0.2/32, 10.1.0.0/16, ::1/128, uid:1001, user:root (uid 0), user:nobody (uid 65534)"))
    }

    @Test func unknownTrustValueNamesItsLine() {
        let issue = onlyIssue(ConfigTestSupport.minimal + "\norg_header_trust: sender")
        #expect(issue?.line == 4)
        #expect(issue?.keyPath == "org_header_trust")
        #expect(issue?.message == "sender is not one of: any, senders")
    }

    @Test func badClientEntriesNameTheirLines() {
        let yaml = ConfigTestSupport.minimal + """

            orgs:
              acme:
                senders: ["*@acme.example"]
                clients:
                  - 10.0.0.1/8
                  - user:no-such-user-smarthost-test
                  - uid:-1
                  - uid:4294967295
                  - robot
                  - 10.0.0.0/33
            """
        let issues = ConfigTestSupport.issues(yaml)
        #expect(issues.map(\.line) == [8, 9, 10, 11, 12, 13], "\(issues)")
        #expect(issues.map(\.keyPath) == (0..<6).map { "orgs.acme.clients[\($0)]" })
        #expect(issues[0].message == "10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)")
        #expect(issues[1].message.contains("user:no-such-user-smarthost-test names no user on this system"))
        #expect(issues[2].message == "uid:-1 is not a uid (uid:0 to uid:4294967294)")
        #expect(issues[3].message == "uid:4294967295 is not a uid (uid:0 to uid:4294967294)")
        #expect(issues[4].message.contains("robot is not an address, an address block, uid:N or user:NAME"))
        #expect(issues[5].message == "10.0.0.0/33 has a bad prefix length (0-32)")
    }

    @Test func emptyOrScalarClientsAreRefused() {
        let empty = onlyIssue(ConfigTestSupport.minimal + "\norgs:\n  acme:\n    clients: []")
        #expect(empty?.line == 6 && empty?.keyPath == "orgs.acme.clients")
        #expect(empty?.message.contains("would refuse every client") == true)
        let scalar = onlyIssue(ConfigTestSupport.minimal + "\norgs:\n  acme:\n    clients: uid:1001")
        #expect(scalar?.line == 6 && scalar?.message.contains("expected a list") == true)
    }

    @Test func userNamesResolveThroughTheLookup() {
        #expect(ClientRule.parse("user:robot", lookUpUser: { $0 == "robot" ? 1001 : nil }) == .success(.uid(1001, user: "robot")))
        #expect(ClientRule.parse("user:robot", lookUpUser: { _ in nil }) == .failure(.unknownUser("robot")))
        #expect(ClientRule.parse("user:", lookUpUser: { _ in 0 }) == .failure(.unknownUser("")))
        #expect(ClientRule.parse("uid:0") == .success(.uid(0, user: nil)))
        #expect(ClientRule.parse("uid:4294967294") == .success(.uid(4_294_967_294, user: nil)))
        #expect(ClientRule.parse("uid:") == .failure(.badUID))
        #expect(ClientRule.parse("uid:+5") == .failure(.badUID))
        #expect(ClientRule.systemUID("root") == 0)
    }

    @Test func unixListenAddresses() {
        #expect(ListenAddress.parseListener("unix:/run/smarthost/smtp.sock")?.unixPath == "/run/smarthost/smtp.sock")
        let longest = "/" + String(repeating: "s", count: 106)
        #expect(ListenAddress.parseListener("unix:" + longest)?.unixPath == longest)
        #expect(ListenAddress.parseListener("unix:" + longest + "s") == nil)
        #expect(ListenAddress.parseListener("unix:relative.sock") == nil)
        #expect(ListenAddress.parseListener("unix:") == nil)
        #expect(ListenAddress.parseListener("127.0.0.1:25")?.port == 25)
        // Metrics and the sendmail target stay TCP: plain `parse` takes no unix: form.
        #expect(ListenAddress.parse("unix:/run/x.sock") == nil)
        let issue = onlyIssue("listen: [\"unix:smtp.sock\"]\n" + ConfigTestSupport.minimal)
        #expect(issue?.line == 1 && issue?.keyPath == "listen[0]")
        #expect(issue?.message.contains("unix:/absolute/path") == true)
        let metrics = onlyIssue(ConfigTestSupport.minimal + "\nmetrics: { listen: \"unix:/run/m.sock\" }")
        #expect(metrics?.keyPath == "metrics.listen")
    }
}
