import Foundation
import Testing
@testable import SmarthostCore

/// Issue 19, item 4: identity rules that identify nobody. `check-config` (and the relay at
/// start and reload) warns about an org's loopback `clients:` rule, which any local user
/// meets by binding that address, and about orgs with their own route that any local
/// client can claim with the org header under `org_header_trust: any`.
@Suite struct ConfigTenancyWarningsTests {
    private let route = """
    default:
      host: smtp.example.com
      port: 587
      tls: starttls

    """

    private func warnings(_ yaml: String) throws -> [ConfigIssue] {
        try ConfigTestSupport.parse(route + yaml).warnings
    }

    private func org(_ clients: String, use: String = "default", trust: String = "senders") -> String {
        "org_header_trust: \(trust)\norgs:\n  acme:\n    use: \(use)\n    clients: \(clients)\n"
    }

    @Test func aLoopbackClientsRuleIsOneLineNamingTheOrgAndTheRule() throws {
        let found = try warnings(org(#"["127.0.0.2", "uid:1001"]"#))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.keyPath == "orgs.acme.clients[0]")
        #expect(found.first?.line == 9)
        let text = try #require(found.first?.description)
        #expect(text.contains("org acme: clients rule 127.0.0.2 is met by any local user"), "\(text)")
        #expect(text.contains("any process can bind any 127.x.y.z or ::1"), "\(text)")
        #expect(text.contains("uid:/user: rules over the Unix socket"), "\(text)")
        #expect(!text.contains("\n"))
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.0/8", "127.5.0.0/16", "::1", "::1/128", "::ffff:127.0.0.9",
                      "0.0.0.0/0", "96.0.0.0/3", "::/0"])
    func everyRuleALoopbackClientMeetsWarns(rule: String) throws {
        let found = try warnings(org("[\"\(rule)\"]"))
        #expect(found.map(\.keyPath) == ["orgs.acme.clients[0]"], "\(rule): \(found)")
    }

    @Test(arguments: ["10.1.0.0/16", "192.0.2.7", "128.0.0.0/1", "2001:db8::/32", "::2", "uid:1001", "user:root"])
    func rulesNoLocalUserCanForgeDoNotWarn(rule: String) throws {
        #expect(try warnings(org("[\"\(rule)\"]")).isEmpty, "\(rule)")
    }

    @Test func includesLoopbackIsExactAtTheBlocksEdges() throws {
        func block(_ text: String) throws -> CIDRBlock { try CIDRBlock.parse(text).get() }
        #expect(try block("127.255.255.255").includesLoopback)
        #expect(try !block("126.255.255.255").includesLoopback)
        #expect(try !block("128.0.0.0").includesLoopback)
        #expect(try block("64.0.0.0/2").includesLoopback)
        #expect(try !block("::ffff:126.0.0.1").includesLoopback)
    }

    @Test func orgsWithTheirOwnRouteUnderTrustAnyAreOneLine() throws {
        let yaml = """
        orgs:
          acme:
            use: custom
            host: smtp.acme.example
            port: 587
            tls: starttls
            username: alerts@acme.example
            password: acme-secret-19
          globex:
            use: default
          initech:
            use: custom
            host: smtp.initech.example
            port: 587
            tls: starttls
          robots:
            use: custom
            host: smtp.robots.example
            port: 587
            tls: starttls
            clients: ["uid:1001"]

        """
        let found = try warnings(yaml)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.keyPath == "org_header_trust")
        let text = try #require(found.first?.description)
        #expect(text.contains("org_header_trust is any: any local client can claim org acme, initech"), "\(text)")
        #expect(text.contains("with the X-Smarthost-Org header"), "\(text)")
        #expect(text.contains("org_header_trust: senders"), "\(text)")
        #expect(text.contains("clients: uid:/user: rules"), "\(text)")
        #expect(!text.contains("globex") && !text.contains("robots"), "use: default, or clients: rules: \(text)")
        #expect(!text.contains("acme-secret-19"))
        // The same orgs under `senders`: nothing to claim.
        #expect(try warnings("org_header_trust: senders\n" + yaml).isEmpty)
        // Written out as `any`, the line points at the key.
        let explicit = try warnings("org_header_trust: any\n" + yaml)
        #expect(explicit.first?.line == 5, "\(explicit)")
    }

    @Test func tenThousandClaimableOrgsAreStillOneShortLine() throws {
        var yaml = "orgs:\n"
        for index in 0..<300 {
            yaml += "  org\(index):\n    use: custom\n    host: smtp.example.net\n    port: 587\n    tls: starttls\n"
        }
        let found = try warnings(yaml)
        #expect(found.count == 1)
        #expect(found.first?.description.contains("org org0, org1, org2, org3, org4 and 295 more") == true, "\(found)")
        #expect((found.first?.description.count ?? 0) < 400)
    }

    /// The packaged examples use the safe settings: no tenancy warning in any of them.
    @Test func theShippedConfigurationsUseTheSafeSettings() throws {
        let dev = try RelayConfig.load(path: ConfigTestSupport.repositoryConfigDirectory() + "/smarthost.yaml",
                                       environment: ["SENDGRID_API_KEY": "x", "ACME_SMTP_PASSWORD": "x"])
        #expect(dev.orgHeaderTrust == .senders)
        #expect(dev.warnings.isEmpty, "\(dev.warnings)")
        let production = try String(contentsOfFile: ConfigTestSupport.repositoryConfigDirectory() + "/production.example.yaml",
                                    encoding: .utf8)
        #expect(production.contains("\norg_header_trust: senders"))
        let packaged = try String(contentsOfFile: ConfigTestSupport.repositoryConfigDirectory() + "/../deploy/smarthost.yaml.example",
                                  encoding: .utf8)
        #expect(packaged.contains("\norg_header_trust: senders"))
        #expect(!packaged.contains("clients: [\"127."))
    }

    /// The real binary, as an operator runs it: the warning is printed, exit 0; `--strict` refuses.
    @Test func checkConfigWarnsAboutA127Rule() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/c.yaml", route + org(#"["127.0.0.2"]"#), mode: 0o600)
        let plain = try ToolRun.run(RelayProcess.binaryPath, ["check-config", "--quiet", "--config", dir + "/c.yaml"])
        #expect(plain.status == 0, "\(plain.output)")
        #expect(plain.output.contains("warning: line 9: orgs.acme.clients[0]: org acme: clients rule 127.0.0.2 is met by any local user"),
                "\(plain.output)")
        let strict = try ToolRun.run(RelayProcess.binaryPath, ["check-config", "--strict", "--config", dir + "/c.yaml"])
        #expect(strict.status == 1, "\(strict.output)")
    }

    @Test func checkConfigWarnsAboutClaimableCredentials() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        let yaml = route + "orgs:\n  acme:\n    use: custom\n    host: smtp.acme.example\n    port: 587\n    tls: starttls\n"
            + "    username: alerts@acme.example\n    password_file: acme.secret\n"
        ConfigTestSupport.writeFile(dir + "/acme.secret", "s3cret-19\n", mode: 0o600)
        ConfigTestSupport.writeFile(dir + "/c.yaml", yaml, mode: 0o600)
        let run = try ToolRun.run(RelayProcess.binaryPath, ["check-config", "--config", dir + "/c.yaml"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("warning: org_header_trust: org_header_trust is any: any local client can claim org acme"),
                "\(run.output)")
        #expect(!run.output.contains("s3cret-19"))
    }
}
