import Testing
@testable import SmarthostCore

/// `hostname:` and `aliases:` as the configuration reads them: what loads, and every
/// mistake refused at load with its line (a loop never reaches the running relay).
@Suite struct ConfigAliasesTests {
    static let base = ConfigTestSupport.minimal + "\nhostname: box.example\n"

    @Test func aliasesLoadWithListsAndLocalTargets() throws {
        let config = try ConfigTestSupport.parse(Self.base + """
            aliases:
              Root: ops@example.com
              postmaster: root
              www-data: [web@example.com, "ops@example.com"]
            """)
        #expect(config.aliases == ["root": ["ops@example.com"], "postmaster": ["root"],
                                   "www-data": ["web@example.com", "ops@example.com"]])
        let addressing = config.addressing
        #expect(addressing.hostname == "box.example")
        #expect(addressing.localDomains == ["box.example", "relay.test", "localhost"], "relay.test: the system host name")
        #expect(addressing.recipients(["postmaster@relay.test", "www-data"]) == ["ops@example.com", "web@example.com"])
    }

    @Test func withoutHostnameTheSystemHostNameQualifies() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal)
        #expect(config.addressing.qualify("root") == "root@relay.test")
        #expect(config.aliases.isEmpty)
    }

    @Test func aLoopIsRefusedAtLoadNamingItsNames() {
        let issues = ConfigTestSupport.issues(Self.base + """
            aliases:
              root: admin
              admin: [ops@example.com, sysadmin@localhost]
              sysadmin: root@box.example
            """)
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.line == 7 && issues.first?.keyPath == "aliases.admin", "\(issues)")
        #expect(issues.first?.message == "aliases loop: admin → sysadmin → root → admin "
            + "(each name must end at an address of another domain or at itself)", "\(issues)")
    }

    @Test func aNameListingItselfIsNoLoop() throws {
        let config = try ConfigTestSupport.parse(Self.base + "aliases: { root: [root, ops@example.com] }\n")
        #expect(config.addressing.recipients(["root"]) == ["root@box.example", "ops@example.com"])
    }

    @Test func badKeysAndTargetsNameTheirLines() {
        let issues = ConfigTestSupport.issues(Self.base + """
            aliases:
              root@box.example: ops@example.com
              ops: "not an address@"
              ROOT: a@example.com
              root: b@example.com
              empty: []
            """)
        let text = issues.map(\.description).joined(separator: "\n")
        #expect(issues.contains { $0.line == 6 && $0.message.contains("root@box.example is not a local part") }, "\(text)")
        #expect(issues.contains { $0.line == 7 && $0.message.contains("not an address@ is not a mail address or a local part") }, "\(text)")
        #expect(issues.contains { $0.line == 9 && $0.message.contains("root is already an alias (at line 8") }, "\(text)")
        #expect(issues.contains { $0.line == 10 && $0.message.contains("names no address") }, "\(text)")
        #expect(issues.count == 4, "\(text)")
    }
}
