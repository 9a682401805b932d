/// What the queue keeps per route and per host, and how a route changes: each change is a
/// mutating method that returns the notes it makes (logs, `status`, `/metrics`), so the
/// queue never edits a copy of a route and puts it back.
extension DeliveryQueue {
    struct HostState {
        var downUntil: Int64 = 0
        var downSince: Int64?
        var lastFailure: String?
    }

    /// How notes name a route and its hosts: `host:port` (every host of the route), with the
    /// orgs whose mail it carries when they tell it apart from another credential's route to
    /// the same hosts (`orgsShown`), as `status` shows it: `localhost:587 (org b)`.
    struct RouteLabel: Equatable {
        var name: String
        var orgs: [String]

        var route: String { ControlRouteDown.label(name, orgs: orgs) }

        func host(_ endpoint: String) -> String { ControlRouteDown.label(endpoint, orgs: orgs) }
    }

    struct Route {
        private(set) var target: DeliveryTarget
        var pace: RoutePace
        var waiting: [SpoolID] = []
        var connections: Set<ConnectionID> = []
        private(set) var hosts: [String: HostState] = [:]
        /// Set while every host is down: one log line per transition, and for how long.
        private(set) var downSince: Int64?
        private(set) var lastFailure: String?
        /// The orgs whose mail it has carried (`-`: none), so `status` can tell apart two
        /// routes to the same hosts with different credentials. Bounded: under
        /// `org_header_trust: any` a client may invent org ids.
        private(set) var orgs: Set<String> = []
        static let orgsShown = 8

        init(target: DeliveryTarget, pace: RoutePace) {
            self.target = target
            self.pace = pace
        }

        /// The route as resolved for a message now (a reload may have changed it): a change of
        /// its limits starts its pace afresh.
        mutating func resolved(_ target: DeliveryTarget, pace: RoutePace, org: String?) {
            if !self.pace.isConfigured(like: pace) { self.pace = pace }
            self.target = target
            if orgs.count < Self.orgsShown { orgs.insert(org ?? "-") }
        }

        /// The first host, in the route's order, not marked down at `now`.
        func availableHost(now: Int64) -> String? {
            target.hosts.first { (hosts[$0]?.downUntil ?? 0) <= now }
        }

        /// When the first host comes back, if every host is down now; else nil.
        func downUntil(now: Int64) -> Int64? {
            guard availableHost(now: now) == nil else { return nil }
            return target.hosts.compactMap { hosts[$0]?.downUntil }.min()
        }

        /// Nothing to do and nothing to remember: the queue may forget it.
        var isUnused: Bool {
            connections.isEmpty && waiting.isEmpty && !pace.isSlowed && downSince == nil
                && hosts.values.allSatisfy { $0.downSince == nil }
        }

        /// How long `host` has been down at `now` (0: it is up).
        func hostDownFor(_ host: String, now: Int64) -> Int64 {
            hosts[host]?.downSince.map { now - $0 } ?? 0
        }

        /// Whether a host other than `host` is up at `now`.
        func otherHostUp(than host: String, now: Int64) -> Bool {
            target.hosts.contains { $0 != host && (hosts[$0]?.downUntil ?? 0) <= now }
        }

        /// A connection to `host` is ready: the host, and the route, are up again.
        mutating func connected(to host: String, now: Int64, label: RouteLabel) -> [DeliveryNote] {
            var notes: [DeliveryNote] = []
            if let since = hosts[host]?.downSince, target.hosts.count > 1 {
                notes.append(.hostUp(route: label.route, host: label.host(DeliveryTarget.endpoint(host, target.port)),
                                     downForMilliseconds: now - since))
            }
            hosts[host] = nil
            if let since = downSince {
                downSince = nil
                notes.append(.routeUp(route: label.route, downForMilliseconds: now - since))
            }
            lastFailure = nil
            return notes
        }

        /// The upstream said "too fast" (`RoutePace.throttled`).
        mutating func throttled(now: Int64, sentAt: Int64?, reply: String?, retryAfter: Int64? = nil,
                                label: RouteLabel) -> [DeliveryNote] {
            guard let change = pace.throttled(now: now, sentAt: sentAt, retryAfter: retryAfter) else { return [] }
            return [.pace(route: label.route, change: change, reply: reply)]
        }

        /// A cool-down went by: one step back up.
        mutating func recoverPace(now: Int64, label: RouteLabel) -> [DeliveryNote] {
            guard let change = pace.recover(now: now) else { return [] }
            return [.pace(route: label.route, change: change, reply: nil)]
        }

        /// `DeliveryPolicy.siteOutcome`'s decision for a failed connection to `host`, applied.
        mutating func failed(_ host: String, _ outcome: SiteOutcome, failure: UpstreamFailure, sentAt: Int64?,
                             now: Int64, label: RouteLabel) -> [DeliveryNote] {
            switch outcome {
            case .throttled(let reply):
                return throttled(now: now, sentAt: sentAt, reply: reply.description, label: label)
            case .nextHost(let retryIn):
                let wasDown = markDown(host, failure: failure, retryIn: retryIn, now: now)
                guard !wasDown else { return [] }
                return [.hostDown(route: label.route, host: label.host(DeliveryTarget.endpoint(host, target.port)),
                                  error: failure.summary, retryInMilliseconds: retryIn)]
            case .routeDown(let retryIn):
                markDown(host, failure: failure, retryIn: retryIn, now: now)
                let first = downSince == nil
                if first { downSince = now }
                let routeRetryIn = (downUntil(now: now) ?? now + retryIn) - now
                return [.routeDown(route: label.route, error: failure.summary, retryInMilliseconds: routeRetryIn, first: first)]
            }
        }

        /// Returns whether the host was down already.
        @discardableResult
        private mutating func markDown(_ host: String, failure: UpstreamFailure, retryIn: Int64, now: Int64) -> Bool {
            var state = hosts[host] ?? HostState()
            let wasDown = state.downSince != nil
            state.downSince = state.downSince ?? now
            state.downUntil = now + retryIn
            state.lastFailure = failure.summary
            hosts[host] = state
            lastFailure = failure.summary
            return wasDown
        }

        /// `queue flush` and reloads: every failed host is probed again at once.
        mutating func probeHostsNow() {
            for host in hosts.keys { hosts[host]?.downUntil = 0 }
        }
    }
}
