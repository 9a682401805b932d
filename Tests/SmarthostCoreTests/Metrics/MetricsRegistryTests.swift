import Testing
@testable import SmarthostCore

@Suite struct MetricsRegistryTests {
    @Test func expositionIsTheTextFormatWithFamiliesAndSeriesInOrder() {
        let registry = MetricsRegistry()
        registry.declare("b_total", .counter, help: "B things", labels: [("org", "z")])
        registry.increment("b_total", help: "B things", labels: [("org", "a")], by: 2)
        registry.set("a_gauge", help: "A\nline", 1.5)
        let text = String(decoding: registry.exposition(), as: UTF8.self)
        #expect(text == """
            # HELP a_gauge A\\nline
            # TYPE a_gauge gauge
            a_gauge 1.5
            # HELP b_total B things
            # TYPE b_total counter
            b_total{org="a"} 2
            b_total{org="z"} 0

            """)
    }

    @Test func labelValuesAreEscaped() {
        let registry = MetricsRegistry()
        registry.increment("c_total", help: "c", labels: [("org", "a\"b\\c\nd")])
        #expect(String(decoding: registry.exposition(), as: UTF8.self).contains(#"c_total{org="a\"b\\c\nd"} 1"#))
    }

    @Test func histogramsAreCumulativeWithInfSumAndCount() {
        let registry = MetricsRegistry()
        for value in [0.01, 0.2, 0.2, 7.0] {
            registry.observe("h_seconds", help: "h", labels: [("org", "a")], buckets: [0.1, 1], value)
        }
        let text = String(decoding: registry.exposition(), as: UTF8.self)
        #expect(text.contains(#"h_seconds_bucket{org="a",le="0.1"} 1"#))
        #expect(text.contains(#"h_seconds_bucket{org="a",le="1"} 3"#))
        #expect(text.contains(#"h_seconds_bucket{org="a",le="+Inf"} 4"#))
        #expect(text.contains(#"h_seconds_sum{org="a"} 7.41"#))
        #expect(text.contains(#"h_seconds_count{org="a"} 4"#))
    }

    /// 10 000 orgs at zero: the registration that took minutes with a copying registry.
    @Test func tenThousandOrgsArePreparedAndListed() throws {
        let orgs = (0..<10_000).map { OrgSetting(id: "org\($0)", route: .useDefault, senders: []) }
        let config = RelayConfig(hostname: "h", defaultRoute: RouteSettings(host: "h", port: 25, tls: .none, domain: "d"), orgs: orgs)
        let metrics = RelayMetrics()
        metrics.prepare(config)
        #expect(metrics.registry.value("smarthost_messages_accepted_total", labels: [("org", "org9999"), ("route", "default")]) == 0)
        let lines = String(decoding: metrics.exposition(), as: UTF8.self).split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("smarthost_messages_accepted_total{") }.count == 10_001)
    }
}
