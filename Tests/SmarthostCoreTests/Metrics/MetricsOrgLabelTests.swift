import Testing
@testable import SmarthostCore

/// Issue 19, item 5: org labels carry only configured org ids; and the text is rendered
/// from a snapshot, off the registry's thread.
@Suite struct MetricsOrgLabelTests {
    private func config(_ orgs: [String]) -> RelayConfig {
        var config = RelayConfig(hostname: "relay.test", defaultRoute: RouteSettings(host: "smtp.example.com", port: 587, tls: .starttls, domain: "relay.test"))
        config.orgs = orgs.map { OrgSetting(id: $0, route: .useDefault) }
        return config
    }

    private func text(_ metrics: RelayMetrics) -> String {
        String(decoding: metrics.exposition(), as: UTF8.self)
    }

    @Test func sixtyInventedOrgsAreOneUnknownSeries() {
        let metrics = RelayMetrics()
        metrics.prepare(config(["acme"]))
        let before = metrics.snapshot().seriesCount
        for index in 0..<60 {
            let labels = RelayMetrics.MessageLabels(org: "invented-\(index)", layer: "default")
            metrics.accepted(labels, bytes: 10)
            metrics.delivered(labels, bytes: 10, latencySeconds: 0.2)
            metrics.deferred(labels)
            metrics.failed(labels)
        }
        metrics.accepted(RelayMetrics.MessageLabels(org: "acme", layer: "default"), bytes: 5)
        let out = text(metrics)
        #expect(!out.contains("invented-"))
        #expect(out.contains(#"smarthost_messages_accepted_total{org="unknown",route="default"} 60"#), "\(out)")
        #expect(out.contains(#"smarthost_messages_accepted_total{org="acme",route="default"} 1"#))
        #expect(out.contains(#"smarthost_delivery_latency_seconds_count{org="unknown",route="default"} 60"#))
        // Six counters and one histogram for the unknown org, whatever the number of ids.
        #expect(metrics.snapshot().seriesCount - before == 7, "\(metrics.snapshot().seriesCount - before)")
    }

    @Test func queueGaugesSumUnknownOrgs() {
        let metrics = RelayMetrics()
        let config = config(["acme"])
        metrics.prepare(config)
        var queue: [RelayMetrics.MessageLabels: (count: Int, oldestSeconds: Int64)] = [:]
        for index in 0..<60 { queue[RelayMetrics.MessageLabels(org: "x\(index)", layer: "default")] = (2, Int64(index)) }
        queue[RelayMetrics.MessageLabels(org: "acme", layer: "default")] = (1, 7)
        metrics.setQueue(queue, known: RelayMetrics.labels(of: config))
        let out = text(metrics)
        #expect(out.contains(#"smarthost_queue_messages{org="unknown",route="default"} 120"#), "\(out)")
        #expect(out.contains(#"smarthost_queue_oldest_message_age_seconds{org="unknown",route="default"} 59"#))
        #expect(out.contains(#"smarthost_queue_messages{org="acme",route="default"} 1"#))
        #expect(!out.contains(#"org="x1""#))
    }

    @Test func aReloadThatAddsAnOrgGivesItItsOwnSeries() {
        let metrics = RelayMetrics()
        metrics.prepare(config(["acme"]))
        metrics.accepted(RelayMetrics.MessageLabels(org: "globex", layer: "default"), bytes: 1)
        metrics.prepare(config(["acme", "globex"]))
        metrics.accepted(RelayMetrics.MessageLabels(org: "globex", layer: "default"), bytes: 1)
        let out = text(metrics)
        #expect(out.contains(#"smarthost_messages_accepted_total{org="globex",route="default"} 1"#), "\(out)")
        #expect(out.contains(#"smarthost_messages_accepted_total{org="unknown",route="default"} 1"#))
        #expect(out.contains(#"smarthost_messages_accepted_total{org="-",route="default"} 0"#), "the host level stays -")
    }

    /// The snapshot is a value: rendering it on another thread while the registry moves on
    /// gives the values of the moment it was taken.
    @Test func aSnapshotRendersTheValuesOfItsMoment() {
        let registry = MetricsRegistry()
        registry.increment("a_total", help: "A", labels: [("k", "v")])
        let snapshot = registry.snapshot()
        registry.increment("a_total", help: "A", labels: [("k", "v")], by: 5)
        registry.increment("b_total", help: "B")
        let rendered = String(decoding: snapshot.exposition(), as: UTF8.self)
        #expect(rendered == "# HELP a_total A\n# TYPE a_total counter\na_total{k=\"v\"} 1\n")
        #expect(String(decoding: registry.exposition(), as: UTF8.self).contains("a_total{k=\"v\"} 6"))
    }
}
