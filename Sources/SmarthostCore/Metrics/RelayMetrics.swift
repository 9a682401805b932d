import Prometheus

/// The relay's Prometheus metrics (served at `/metrics` when `metrics.listen` is set).
///
/// swift-prometheus's registry fits the event loop: counters and gauges are atomics, a
/// histogram takes an uncontended lock, nothing is `async`, and it brings no Foundation.
/// Labels are the configuration's own names — `org` (an org id, "-" for the host level) and
/// `route` (the settings layer: `org`, `host` or `default`) — never a client address, so
/// their number is bounded by the file. Every configured org starts at zero (`prepare`),
/// so a rate over a counter that never moved is 0, not "no data".
public final class RelayMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    /// Delivery latency (accepted → the upstream's 250) and upstream step durations.
    static let latencyBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400]
    static let stepBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    public init() {
        registry.makeGauge(name: "smarthost_build_info", labels: [
            ("version", BuildInfo.version), ("commit", BuildInfo.commit), ("openssl", BuildInfo.openSSL),
        ], help: "Build of the running relay; always 1").set(Int64(1))
    }

    // MARK: labels

    /// The labels of a message: its org, and the settings layer whose route it takes.
    public struct MessageLabels: Sendable, Hashable {
        public var org: String
        public var route: String

        public init(org: String?, layer: String?) {
            self.org = org ?? "-"
            self.route = layer ?? "host"
        }

        var pairs: [(String, String)] { [("org", org), ("route", route)] }
    }

    /// Every configured org and the host level, at zero. Called at start and on reload.
    public func prepare(_ config: RelayConfig) {
        var labels = [MessageLabels(org: nil, layer: RouteResolver.resolve(org: nil, config: config).layer.rawValue)]
        for org in config.orgs {
            labels.append(MessageLabels(org: org.id, layer: RouteResolver.resolve(org: org.id, config: config).layer.rawValue))
        }
        for label in labels {
            for counter in Self.messageCounters { _ = registry.makeCounter(name: counter.name, labels: label.pairs, help: counter.help) }
            _ = registry.makeGauge(name: "smarthost_queue_messages", labels: label.pairs, help: Self.queueHelp)
            _ = registry.makeGauge(name: "smarthost_queue_oldest_message_age_seconds", labels: label.pairs, help: Self.oldestHelp)
        }
        for replyClass in ["4xx", "5xx"] {
            _ = registry.makeCounter(name: "smarthost_messages_refused_total", labels: [("class", replyClass)], help: Self.refusedHelp)
        }
    }

    static let messageCounters: [(name: String, help: String)] = [
        ("smarthost_messages_accepted_total", "Messages accepted from clients (durably spooled, answered 250)"),
        ("smarthost_messages_delivered_total", "Messages an upstream took for every remaining recipient"),
        ("smarthost_messages_deferred_total", "Delivery attempts that ended in a retry later"),
        ("smarthost_messages_failed_total", "Messages that became dead letters"),
        ("smarthost_received_bytes_total", "Message bytes accepted from clients"),
        ("smarthost_sent_bytes_total", "Message bytes delivered upstream"),
    ]
    static let queueHelp = "Messages waiting in the queue (queued, deferred or in delivery)"
    static let oldestHelp = "Age of the oldest message in the queue"
    static let refusedHelp = "Client commands refused, by reply class (a message refused at DATA counts once)"

    // MARK: events

    public func accepted(_ labels: MessageLabels, bytes: Int) {
        counter("smarthost_messages_accepted_total", labels).increment()
        counter("smarthost_received_bytes_total", labels).increment(by: Int64(bytes))
    }

    public func refused(code: Int) {
        let replyClass = code >= 500 ? "5xx" : "4xx"
        registry.makeCounter(name: "smarthost_messages_refused_total", labels: [("class", replyClass)], help: Self.refusedHelp)
            .increment()
    }

    public func delivered(_ labels: MessageLabels, bytes: Int, latencySeconds: Double) {
        counter("smarthost_messages_delivered_total", labels).increment()
        counter("smarthost_sent_bytes_total", labels).increment(by: Int64(bytes))
        registry.makeValueHistogram(name: "smarthost_delivery_latency_seconds", labels: labels.pairs,
                                    buckets: Self.latencyBuckets, help: "From acceptance to the upstream's final 250")
            .record(latencySeconds)
    }

    public func deferred(_ labels: MessageLabels) {
        counter("smarthost_messages_deferred_total", labels).increment()
    }

    public func failed(_ labels: MessageLabels) {
        counter("smarthost_messages_failed_total", labels).increment()
    }

    /// How long one step of an upstream session took: `connect`, `tls`, `auth`.
    public func upstreamStep(_ step: String, upstream: String, seconds: Double) {
        registry.makeValueHistogram(name: "smarthost_upstream_\(step)_seconds", labels: [("upstream", upstream)],
                                    buckets: Self.stepBuckets, help: "Time to \(step) to an upstream").record(seconds)
    }

    /// 1 while a route's upstream answers, 0 while it is marked down. `upstream` is the
    /// configured `host:port`, bounded by the file like the other labels.
    public func routeUp(_ upstream: String, up: Bool) {
        registry.makeGauge(name: "smarthost_route_up", labels: [("upstream", upstream)],
                           help: "1 while the route's upstream answers, 0 while it is down").set(Int64(up ? 1 : 0))
    }

    // MARK: gauges set at scrape time

    /// Queue size and oldest age per label; labels absent from `queue` are set to zero.
    public func setQueue(_ queue: [MessageLabels: (count: Int, oldestSeconds: Int64)], known: [MessageLabels]) {
        for label in Set(known).union(queue.keys) {
            let value = queue[label] ?? (0, 0)
            registry.makeGauge(name: "smarthost_queue_messages", labels: label.pairs, help: Self.queueHelp)
                .set(Int64(value.count))
            registry.makeGauge(name: "smarthost_queue_oldest_message_age_seconds", labels: label.pairs, help: Self.oldestHelp)
                .set(Int64(value.oldestSeconds))
        }
    }

    public func setGauge(_ name: String, _ value: Int64, help: String) {
        registry.makeGauge(name: name, help: help).set(value)
    }

    /// The exposition text (format 0.0.4).
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    private func counter(_ name: String, _ labels: MessageLabels) -> Counter {
        registry.makeCounter(name: name, labels: labels.pairs,
                             help: Self.messageCounters.first { $0.name == name }?.help ?? "")
    }
}
