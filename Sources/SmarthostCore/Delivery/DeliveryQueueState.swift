/// The delivery queue's parts: what it keeps per message, per connection and per route.
extension DeliveryQueue {
    /// What the queue needs from the configuration; a reload replaces it.
    struct Rules {
        var policy: DeliveryPolicy
        /// The route a message takes now (routes are re-resolved at every attempt).
        var target: (SpoolEnvelope) -> DeliveryTarget
        /// `queue.connections_per_route`, for routes without `connections:`.
        var defaultConnections: Int
        /// How soon a message held for a missing secret is looked at again.
        var holdRecheckMilliseconds: Int64
        /// Whether a deferral at this (wall) time should warn the sender.
        var delayWarningDue: (SpoolEnvelope, Int64) -> Bool = { _, _ in false }
        /// The message as it goes upstream, from its content, for these recipients
        /// (`DeliveryEnvironment.prepare`): the queue prepares what it holds in memory itself.
        var prepare: (SpoolEnvelope, [UInt8], [String]) -> UpstreamMessage = { envelope, content, recipients in
            UpstreamMessage(sender: envelope.sender, recipients: recipients, content: content)
        }
    }

    struct Entry {
        var envelope: SpoolEnvelope
        var dueAt: Int64
        /// The route it waits in or is being sent on: in flight, whatever the step.
        var route: RouteKey?
        var connection: ConnectionID?
        /// Content of a small message just accepted, so its first attempt reads nothing.
        var content: [UInt8]?
        /// Held because its route's secret is missing (not an operator's hold).
        var awaitingCredential = false
        /// The recipients of the transaction in progress (`max_recipients_per_message`).
        var batch: [String] = []
        /// When its attempt in progress started, to tell a throttling reply to it from one to
        /// a message sent at an earlier pace (`RoutePace.throttled`).
        var startedAt: Int64?
        var inFlight: Bool { route != nil }
    }

    enum ConnectionState: Equatable {
        /// Connecting, or between a result and the next `ready`.
        case notReady
        case idle(since: Int64)
        /// Its message is being read from the spool.
        case preparing(SpoolID)
        case sending(SpoolID)
        case quitting
    }

    struct Connection {
        var route: RouteKey
        var host: String
        var state: ConnectionState
        /// When its last message started (a throttling reply as it closes is about that one).
        var lastStartedAt: Int64?
    }
}

/// What the queue knows, for `status`, `STATUS=`, `/metrics` and the control socket.
extension DeliveryQueue {
    var queuedCount: Int { entries.count }
    var deferredCount: Int { entries.values.filter { $0.envelope.attempts > 0 }.count }
    var inFlightCount: Int { entries.values.filter(\.inFlight).count }
    var hasInFlight: Bool { entries.values.contains { $0.inFlight } }
    var awaitingCredentialCount: Int { entries.values.filter(\.awaitingCredential).count }
    var heldCount: Int { entries.values.filter(\.envelope.held).count }

    /// `now`: monotonic, like every deadline the queue keeps.
    func routesDown(now: Int64) -> Int {
        routes.values.filter { $0.downUntil(now: now) != nil }.count
    }

    /// Routes whose every host is down (or still failing), for `status` and `STATUS=`.
    func routesDownNow(now: Int64) -> [ControlRouteDown] {
        routes.compactMap { key, route -> ControlRouteDown? in
            guard let since = route.downSince else { return nil }
            let retry = route.downUntil(now: now).map { max($0 - now, 0) } ?? 0
            return ControlRouteDown(upstream: route.target.routeName, downSeconds: (now - since) / 1000,
                                    retryInSeconds: retry / 1000, error: route.lastFailure ?? "-", orgs: orgsShown(for: key))
        }.sorted { ($0.upstream, $0.orgs.joined(separator: ",")) < ($1.upstream, $1.orgs.joined(separator: ",")) }
    }

    /// Routes slowed down by throttling now: name, messages per second (nil: no limit),
    /// connections, orgs (as `orgsShown`).
    var slowedRoutes: [ControlRouteSlowed] {
        routes.filter(\.value.pace.isSlowed)
            .map { key, route in
                ControlRouteSlowed(route: route.target.routeName, messagesPerSecond: route.pace.rate,
                                   connections: route.pace.connections, orgs: orgsShown(for: key))
            }
            .sorted { ($0.route, $0.orgs.joined(separator: ",")) < ($1.route, $1.orgs.joined(separator: ",")) }
    }

    /// The orgs whose mail a route carried, to tell apart routes to the same hosts with
    /// different credentials without naming the credential: shown when another route has the
    /// same name now, or when the route authenticates (another org's credential to these
    /// hosts may have nothing queued at the moment) and carries some org's mail.
    func orgsShown(for key: RouteKey) -> [String] {
        guard let route = routes[key] else { return [] }
        let orgs = route.orgs.sorted()
        let name = route.target.routeName
        let sameName = routes.contains { $0.key != key && $0.value.target.routeName == name }
        return sameName || (key.credential != .none && orgs != ["-"]) ? orgs : []
    }

    /// How `/metrics` names the host of a connection (`RouteLabel.host`).
    func hostLabel(of cid: ConnectionID) -> String? {
        guard let connection = connections[cid], let route = routes[connection.route] else { return nil }
        return label(for: connection.route).host(DeliveryTarget.endpoint(connection.host, route.target.port))
    }

    func state(of id: SpoolID) -> ControlQueueState {
        guard let entry = entries[id] else { return .unknown }
        return entry.inFlight ? .inFlight : .waiting
    }
}
