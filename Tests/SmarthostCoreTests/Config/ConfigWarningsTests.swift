import Foundation
import Testing
@testable import SmarthostCore

/// `check-config` warnings: legal values that are almost certainly not what the operator
/// meant. Each names its line and key; none stops the relay (`--strict` does).
@Suite struct ConfigWarningsTests {
    private func warnings(_ yaml: String) throws -> [String] {
        try ConfigTestSupport.parse(yaml).warnings.map(\.description)
    }

    private func route(port: Int = 587, tls: String = "starttls", extra: String = "") -> String {
        """
        default:
          host: smtp.example.com
          port: \(port)
          tls: \(tls)
        \(extra)
        """
    }

    @Test func aCleanConfigurationHasNoWarnings() throws {
        #expect(try warnings(route() + "  timeout: 30s\n").isEmpty)
        #expect(try warnings(route(port: 465, tls: "implicit")).isEmpty)
        #expect(try warnings("listen: [\"127.0.0.1:25\", \"[::1]:25\"]\n" + route()).isEmpty)
    }

    @Test func aBareSmallTimeoutIsMilliseconds() throws {
        let found = try warnings(route(extra: "  timeout: 30"))
        #expect(found == ["line 5: default.timeout: 30 is 30 milliseconds (a bare number is milliseconds here); write 30s for seconds"])
        #expect(try warnings(route(extra: "  timeout: 180000")).isEmpty)
    }

    @Test func tlsModeAgainstTheWellKnownPort() throws {
        #expect(try warnings(route(port: 465, tls: "starttls")).first?.contains("line 4: default.tls: port 465 is implicit TLS") == true)
        #expect(try warnings(route(port: 587, tls: "implicit")).first?.contains("port 587 expects STARTTLS") == true)
    }

    @Test func aNetworkListenerOpenToEveryoneIsAnOpenRelay() throws {
        let open = try warnings("listen: [\"0.0.0.0:25\"]\naccess:\n  allow: [\"0.0.0.0/0\"]\n" + route())
        #expect(open.count == 1)
        #expect(open.first?.contains("line 3: access.allow: listener 0.0.0.0:25 is reachable from the network") == true, "\(open)")
        #expect(open.first?.contains("open relay") == true)
    }

    @Test func aListenerNoAllowedClientCanReach() throws {
        let found = try warnings("listen: [\"10.0.0.5:25\"]\n" + route())
        #expect(found.first?.contains("listener 10.0.0.5:25 is not on a network that access.allow admits") == true)
        #expect(try warnings("listen: [\"10.0.0.5:25\"]\naccess:\n  allow: [\"10.0.0.0/8\"]\n" + route()).isEmpty)
    }

    @Test func anOrgWhoseSendersAreAllShadowedByAnEarlierOne() throws {
        let yaml = route() + """
        orgs:
          acme:
            use: default
            senders: ["*@acme.example"]
          robots:
            use: default
            senders: ["robot@acme.example", "*@acme.example"]
          globex:
            use: default
            senders: ["robot@acme.example", "*@globex.example"]
        """
        let found = try warnings(yaml)
        #expect(found == ["line 9: orgs.robots.senders: every pattern is matched first by org acme (earlier in the configuration): no sender ever selects robots"])
    }

    @Test func patternCoverageIsSound() {
        #expect(SenderPattern("*@acme.example").covers("a*@acme.example"))
        #expect(SenderPattern("*@*").covers("x@y.example"))
        #expect(!SenderPattern("a*@acme.example").covers("*@acme.example"))
        #expect(!SenderPattern("*@acme.example").covers("*@*.acme.example"))
        #expect(SenderPattern("*@ACME.example").covers("Bob@acme.EXAMPLE"))
    }

    @Test func aDuplicateOrgNamesTheDuplicatesLine() {
        let issues = ConfigTestSupport.issues(route() + """
        orgs:
          acme:
            use: default
          globex:
            use: default
          acme:
            use: default
        """)
        #expect(issues.first?.line == 10, "\(issues)")
        #expect(issues.first?.message.contains("duplicate key: acme (first defined at line 6)") == true, "\(issues)")
    }

    @Test func anUnquotedStarPatternGetsAHint() {
        let issues = ConfigTestSupport.issues(route() + """
        orgs:
          acme:
            use: default
            senders: [*@acme.example]
        """)
        #expect(issues.first?.message.contains("quote values that start with *") == true, "\(issues)")
    }

    @Test func anInlinePasswordInAWorldReadableFile() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        let yaml = route(extra: "  username: u\n  password: inline-secret-5")
        ConfigTestSupport.writeFile(dir + "/open.yaml", yaml, mode: 0o644)
        ConfigTestSupport.writeFile(dir + "/closed.yaml", yaml, mode: 0o640)
        let open = try RelayConfig.load(path: dir + "/open.yaml", environment: [:]).warnings
        #expect(open.map(\.keyPath) == ["password"])
        #expect(open.first?.line == 6)
        #expect(open.first?.message.contains("inline-secret-5") == false)
        #expect(try RelayConfig.load(path: dir + "/closed.yaml", environment: [:]).warnings.isEmpty)
    }

    @Test func checkConfigPrintsWarningsAndStrictRefusesThem() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/c.yaml", route(extra: "  timeout: 30"), mode: 0o600)
        let plain = try ToolRun.run(RelayProcess.binaryPath, ["check-config", "--config", dir + "/c.yaml"])
        #expect(plain.status == 0)
        #expect(plain.output.contains("warning: line 5: default.timeout: 30 is 30 milliseconds"), "\(plain.output)")
        let strict = try ToolRun.run(RelayProcess.binaryPath, ["check-config", "--strict", "--config", dir + "/c.yaml"])
        #expect(strict.status == 1, "\(strict.output)")
    }
}
