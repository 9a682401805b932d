/// The relay's Prometheus metrics (served at `/metrics` when `metrics.listen` is set), on
/// `MetricsRegistry`: changed and read on the event loop only.
///
/// Labels are the configuration's own names — `org` (an org id, "-" for the host level) and
/// `route` (the settings layer: `org`, `host` or `default`), `upstream` (a configured
/// `host:port`) — never a client address, so their number is bounded by the file. Every
/// configured org starts at zero (`prepare`), so a rate over a counter that never moved is
/// 0, not "no data".
///
/// An org id the configuration does not have is `org="unknown"`: under
/// `org_header_trust: any` a client chooses the header's value, and 30 000 messages with
/// fresh values made 660 000 series (issue 19). Every org label goes through `bounded`.
public final class RelayMetrics: @unchecked Sendable {
    public let registry = MetricsRegistry()
    /// The configured org ids (`prepare`); any other id is counted as `unknownOrg`.
    private var configuredOrgs: Set<String> = []
    public static let unknownOrg = "unknown"

    /// Delivery latency (accepted → the upstream's 250) and upstream step durations.
    static let latencyBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400]
    static let stepBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    public init() {
        registry.set("smarthost_build_info", help: "Build of the running relay; always 1", labels: [
            ("version", BuildInfo.version), ("commit", BuildInfo.commit), ("openssl", BuildInfo.openSSL),
        ], 1)
        for replyClass in ["4xx", "5xx"] {
            registry.declare("smarthost_messages_refused_total", .counter, help: Self.refusedHelp, labels: [("class", replyClass)])
        }
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

    /// The labels of every configured org and of the host level.
    public static func labels(of config: RelayConfig) -> [MessageLabels] {
        ([nil] + config.orgs.map(\.id)).map { org in
            MessageLabels(org: org, layer: RouteResolver.resolve(org: org, config: config).layer.rawValue)
        }
    }

    /// Every configured org and the host level, at zero. Called at start and on reload.
    public func prepare(_ config: RelayConfig) {
        configuredOrgs = Set(config.orgs.map(\.id))
        for label in Self.labels(of: config) {
            for counter in Self.messageCounters {
                registry.declare(counter.name, .counter, help: counter.help, labels: label.pairs)
            }
            registry.declare("smarthost_queue_messages", .gauge, help: Self.queueHelp, labels: label.pairs)
            registry.declare("smarthost_queue_oldest_message_age_seconds", .gauge, help: Self.oldestHelp, labels: label.pairs)
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
    static let refusedHelp = "Client commands refused, by reply class"

    private func help(_ name: String) -> String {
        Self.messageCounters.first { $0.name == name }?.help ?? ""
    }

    private func count(_ name: String, _ labels: MessageLabels, by amount: Double = 1) {
        registry.increment(name, help: help(name), labels: bounded(labels).pairs, by: amount)
    }

    /// The labels as exported: an org the configuration does not have becomes `unknown`
    /// (one series whatever the clients send). "-", the host level, stays.
    func bounded(_ labels: MessageLabels) -> MessageLabels {
        guard labels.org != "-", !configuredOrgs.contains(labels.org) else { return labels }
        var out = labels
        out.org = Self.unknownOrg
        return out
    }

    // MARK: events

    public func accepted(_ labels: MessageLabels, bytes: Int) {
        count("smarthost_messages_accepted_total", labels)
        count("smarthost_received_bytes_total", labels, by: Double(bytes))
    }

    public func refused(code: Int) {
        registry.increment("smarthost_messages_refused_total", help: Self.refusedHelp,
                           labels: [("class", code >= 500 ? "5xx" : "4xx")])
    }

    public func delivered(_ labels: MessageLabels, bytes: Int, latencySeconds: Double) {
        count("smarthost_messages_delivered_total", labels)
        count("smarthost_sent_bytes_total", labels, by: Double(bytes))
        registry.observe("smarthost_delivery_latency_seconds", help: "From acceptance to the upstream's final 250",
                         labels: bounded(labels).pairs, buckets: Self.latencyBuckets, latencySeconds)
    }

    public func deferred(_ labels: MessageLabels) {
        count("smarthost_messages_deferred_total", labels)
    }

    public func failed(_ labels: MessageLabels) {
        count("smarthost_messages_failed_total", labels)
    }

    /// How long one step of an upstream session took: `connect`, `tls`, `auth`.
    public func upstreamStep(_ step: String, upstream: String, seconds: Double) {
        registry.observe("smarthost_upstream_\(step)_seconds", help: "Time to \(step) to an upstream",
                         labels: [("upstream", upstream)], buckets: Self.stepBuckets, seconds)
    }

    /// An OAuth2 token request ended (issue 11): counted by provider, failures apart.
    public func tokenFetch(provider: String, failed: Bool) {
        registry.increment("smarthost_oauth2_token_fetches_total", help: "OAuth2 token requests to a token endpoint",
                           labels: [("provider", provider)])
        if failed {
            registry.increment("smarthost_oauth2_token_failures_total", help: "OAuth2 token requests that failed",
                               labels: [("provider", provider)])
        }
    }

    /// 1 while a route's upstream answers, 0 while it is marked down.
    public func routeUp(_ upstream: String, up: Bool) {
        registry.set("smarthost_route_up", help: "1 while the route's upstream answers, 0 while it is down",
                     labels: [("upstream", upstream)], up ? 1 : 0)
    }

    /// A route's pace after a change (throttling, or the way back up). A rate of 0 reads
    /// "no limit".
    public func routePace(_ route: String, messagesPerSecond: Double?, connections: Int, slower: Bool) {
        registry.set("smarthost_route_pace_messages_per_second",
                     help: "Messages per second a route may send now (0: no limit)",
                     labels: [("route", route)], messagesPerSecond ?? 0)
        registry.set("smarthost_route_pace_connections", help: "Connections a route may open now",
                     labels: [("route", route)], Double(connections))
        if slower {
            registry.increment("smarthost_route_throttled_total", help: "Times an upstream's throttling reply slowed a route",
                               labels: [("route", route)])
        }
    }

    // MARK: gauges set at scrape time

    /// Queue size and oldest age per label; known labels absent from `queue` read zero.
    /// Unconfigured orgs are summed into `unknown` (their oldest is the oldest of them).
    public func setQueue(_ queue: [MessageLabels: (count: Int, oldestSeconds: Int64)], known: [MessageLabels]) {
        var merged: [MessageLabels: (count: Int, oldestSeconds: Int64)] = [:]
        for (label, value) in queue {
            let old = merged[bounded(label)] ?? (0, 0)
            merged[bounded(label)] = (old.count + value.count, max(old.oldestSeconds, value.oldestSeconds))
        }
        for label in Set(known.map(bounded)).union(merged.keys) {
            let value = merged[label] ?? (0, 0)
            registry.set("smarthost_queue_messages", help: Self.queueHelp, labels: label.pairs, Double(value.count))
            registry.set("smarthost_queue_oldest_message_age_seconds", help: Self.oldestHelp, labels: label.pairs,
                         Double(value.oldestSeconds))
        }
    }

    public func setGauge(_ name: String, _ value: Int64, help: String) {
        registry.set(name, help: help, Double(value))
    }

    /// The exposition text (format 0.0.4).
    public func exposition() -> [UInt8] {
        registry.exposition()
    }

    /// The values as they are now, to render on another thread (`MetricsServer`).
    public func snapshot() -> MetricsRegistry.Snapshot {
        registry.snapshot()
    }
}
