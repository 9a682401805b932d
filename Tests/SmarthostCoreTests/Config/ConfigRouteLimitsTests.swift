import Testing
@testable import SmarthostCore

/// `host:` lists, `rate`, `connections`, `max_recipients_per_message` (issue 15).
@Suite struct ConfigRouteLimitsTests {
    static func route(_ lines: String) -> String {
        "default:\n  host: smtp.example.com\n  port: 587\n" + lines
    }

    @Test func aHostListIsThePrimaryThenItsFallbacks() throws {
        let config = try ConfigTestSupport.parse("default:\n  host: [smtp1.example.com, \"[::1]\", 192.0.2.7]\n  port: 587")
        #expect(config.defaultRoute.host == "smtp1.example.com")
        #expect(config.defaultRoute.fallbackHosts == ["::1", "192.0.2.7"])
        let target = DeliveryEnvironment.target(for: config.defaultRoute)
        #expect(target.hosts == ["smtp1.example.com", "::1", "192.0.2.7"])
        #expect(target.key.hosts == ["smtp1.example.com", "::1", "192.0.2.7"] && target.key.port == 587)
    }

    @Test func aBadOrRepeatedHostInTheListIsNamedWithItsPlace() {
        let bad = ConfigTestSupport.issues("default:\n  host: [smtp1.example.com, \"no such\"]\n  port: 587")
        #expect(bad.first?.keyPath == "default.host[1]" && bad.first?.message.contains("not a host name") == true, "\(bad)")
        let twice = ConfigTestSupport.issues("default:\n  host: [a.example, a.example]\n  port: 587")
        #expect(twice.first?.message.contains("listed twice") == true, "\(twice)")
        let empty = ConfigTestSupport.issues("default:\n  host: []\n  port: 587")
        #expect(empty.first?.message.contains("at least one host") == true, "\(empty)")
    }

    @Test func limitsAreReadInTheUnitsProvidersPublish() throws {
        let config = try ConfigTestSupport.parse(Self.route("  rate: 30/min\n  connections: 3\n  max_recipients_per_message: 100"))
        #expect(config.defaultRoute.limits == RouteLimits(messagesPerSecond: 0.5, connections: 3, maxRecipientsPerMessage: 100))
        #expect(RelayConfig.Schema.messagesPerSecond("14/s") == 14)
        #expect(RelayConfig.Schema.messagesPerSecond("10000/h") == 10_000.0 / 3600)
        #expect(RelayConfig.Schema.messagesPerSecond("1.5 / sec") == 1.5)
        let none = try ConfigTestSupport.parse(ConfigTestSupport.minimal)
        #expect(none.defaultRoute.limits == RouteLimits())
    }

    @Test(arguments: ["rate: 30", "rate: 0/s", "rate: -1/min", "rate: 5/fortnight", "rate: inf/s",
                      "connections: 0", "connections: 1001", "max_recipients_per_message: 0"])
    func outOfRangeLimitsAreRefused(line: String) {
        let issues = ConfigTestSupport.issues(Self.route("  " + line))
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.line == 4 && issues.first?.keyPath == "default." + line.split(separator: ":")[0], "\(issues)")
    }

    @Test func checkConfigShowsFallbacksAndLimits() throws {
        let config = try ConfigTestSupport.parse("default:\n  host: [a.example, b.example]\n  port: 587\n  rate: 14/s\n  max_recipients_per_message: 50")
        let text = ConfigReport.routeDetails(config.defaultRoute).joined(separator: "\n")
        #expect(text.contains("fallback: b.example:587"))
        #expect(text.contains("limits: rate 14/s, max_recipients_per_message 50"))
    }
}
