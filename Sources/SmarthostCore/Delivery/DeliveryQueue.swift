/// The delivery side's decisions, as a value: every queued message and when it is due,
/// each route's connections, waiting messages, failed hosts and pace. Events go in
/// (enqueue, tick, a connection ready, a message finished or read, a connection closed,
/// control requests); actions come out (`DeliveryAction`: open, send, read, quit, record,
/// note). No I/O, no clock of its own (every event carries `now`, in milliseconds), no
/// callbacks: an event is fully applied before the driver performs its actions, so an
/// action that reports back at once cannot find the queue half-changed.
struct DeliveryQueue {
    typealias ConnectionID = UInt64

    static let idleQuitMilliseconds: Int64 = 5_000
    /// At most this much accepted content waits in memory for a first attempt (a route
    /// that is down must not make the queue a memory one); past it, delivery reads the spool.
    static let contentInMemoryBudget = 32 << 20

    private(set) var rules: Rules
    private(set) var entries: [SpoolID: Entry] = [:]
    private var dueQueue = DeliveryDueQueue()
    private(set) var routes: [RouteKey: Route] = [:]
    private(set) var connections: [ConnectionID: Connection] = [:]
    private var nextConnectionID: ConnectionID = 1
    private(set) var contentInMemoryBytes = 0
    private var heldRoutesLogged: Set<RouteKey> = []
    private(set) var counters = DeliveryCounters()
    private(set) var stopping = false

    init(rules: Rules) {
        self.rules = rules
    }

    // MARK: Messages in

    mutating func enqueue(_ envelope: SpoolEnvelope, content: [UInt8]? = nil) {
        removeEntry(envelope.id)
        let due = max(envelope.nextAttemptAt * 1000, 0)
        var entry = Entry(envelope: envelope, dueAt: due)
        if let content, contentInMemoryBytes + content.count <= Self.contentInMemoryBudget {
            contentInMemoryBytes += content.count
            entry.content = content
        }
        entries[envelope.id] = entry
        if !envelope.held { setDue(envelope.id, due) }
    }

    /// Every removal goes through here, so the in-memory budget stays exact.
    private mutating func removeEntry(_ id: SpoolID) {
        _ = takeContent(id)
        entries.removeValue(forKey: id)
    }

    private mutating func takeContent(_ id: SpoolID) -> [UInt8]? {
        guard let content = entries[id]?.content else { return nil }
        entries[id]?.content = nil
        contentInMemoryBytes -= content.count
        return content
    }

    /// Every change of a message's due time goes through here, so the due queue knows it.
    private mutating func setDue(_ id: SpoolID, _ due: Int64) {
        guard entries[id] != nil else { return }
        entries[id]?.dueAt = due
        dueQueue.push(id, due: due)
    }

    /// Back to waiting for its due time, no attempt made (its connection went away).
    private mutating func requeue(_ id: SpoolID, at due: Int64) {
        entries[id]?.route = nil
        entries[id]?.connection = nil
        entries[id]?.batch = []
        setDue(id, due)
    }

    // MARK: Time

    /// Everything due at `now`: messages to start, idle connections to quit, paces to
    /// recover, hosts to probe again.
    mutating func tick(now: Int64) -> [DeliveryAction] {
        guard !stopping else { return [] }
        var actions: [DeliveryAction] = []
        var touched: Set<RouteKey> = []
        while let (due, id) = dueQueue.popDue(now: now) {
            // A stale copy (the message was rescheduled, sent or removed since) is dropped.
            guard let entry = entries[id], !entry.inFlight, !entry.envelope.held, entry.dueAt == due else { continue }
            let target = rules.target(entry.envelope)
            if let missing = target.missingCredential {
                entries[id]?.awaitingCredential = true
                setDue(id, now + rules.holdRecheckMilliseconds)
                if heldRoutesLogged.insert(target.key).inserted {
                    actions.append(.note(.held(route: target.routeName, reason: missing)))
                }
                continue
            }
            entries[id]?.awaitingCredential = false
            let key = target.key
            // A reload that changes the route's limits starts its pace afresh.
            let pace = RoutePace(limits: target.limits, defaultConnections: rules.defaultConnections)
            var route = routes[key] ?? Route(target: target, pace: pace)
            if !route.pace.isConfigured(like: pace) { route.pace = pace }
            route.target = target
            route.noteOrg(entry.envelope.org)
            if let downUntil = route.downUntil(now: now) {
                routes[key] = route
                setDue(id, downUntil)
                continue
            }
            entries[id]?.route = key
            route.waiting.append(id)
            routes[key] = route
            touched.insert(key)
        }
        for (key, route) in routes {
            var pace = route.pace
            if let change = pace.recover(now: now) {
                routes[key]?.pace = pace
                actions.append(.note(.pace(route: route.target.routeName, change: change, reply: nil)))
                touched.insert(key)
            }
            if !route.waiting.isEmpty { touched.insert(key) }
        }
        // Messages first: an idle connection due to quit now takes a message due now instead.
        for key in touched.sorted() { actions += dispatch(key, now: now) }
        for (id, connection) in connections.sorted(by: { $0.key < $1.key }) {
            if case .idle(let since) = connection.state, now - since >= Self.idleQuitMilliseconds {
                connections[id]?.state = .quitting
                actions.append(.quit(id))
            }
        }
        for key in Array(routes.keys) { dropIfUnused(key) }
        return actions
    }

    /// When `tick` next has something to do; nil when nothing is planned.
    mutating func nextWake(now: Int64) -> Int64? {
        guard !stopping else { return nil }
        var wake = dueQueue.earliest
        func consider(_ time: Int64?) {
            guard let time else { return }
            wake = min(wake ?? time, time)
        }
        for connection in connections.values {
            if case .idle(let since) = connection.state { consider(since + Self.idleQuitMilliseconds) }
        }
        for key in routes.keys {
            consider(routes[key]?.pace.nextRecoveryAt)
            guard routes[key]?.waiting.isEmpty == false else { continue }
            consider(routes[key]?.pace.nextStartAt(now: now))
            if let route = routes[key], route.availableHost(now: now) == nil {
                consider(route.target.hosts.compactMap { route.hosts[$0]?.downUntil }.min())
            }
        }
        return wake
    }

    // MARK: Routes and connections

    /// Hands the route's waiting messages to idle connections, as its pace allows, and
    /// opens connections for the rest up to its cap.
    private mutating func dispatch(_ key: RouteKey, now: Int64) -> [DeliveryAction] {
        guard var route = routes[key], !stopping else { return [] }
        var actions: [DeliveryAction] = []
        var idle = route.connections.filter {
            if case .idle = connections[$0]?.state { return true }
            return false
        }.sorted()
        while !route.waiting.isEmpty, let cid = idle.popLast(), route.pace.mayStart(now: now) {
            let id = route.waiting.removeFirst()
            route.pace.started(now: now)
            entries[id]?.startedAt = now
            connections[cid]?.lastStartedAt = now
            routes[key] = route
            actions += start(id, on: cid)
            route = routes[key] ?? route
        }
        let opening = route.connections.filter { connections[$0]?.state == .notReady }.count
        let wanted = min(route.waiting.count - opening, route.pace.connections - route.connections.count)
        // A connection is opened only when a message could start on it: under a slow pace
        // (or a throttling upstream) connections are not opened to sit idle.
        if wanted > 0, route.pace.mayStart(now: now) {
            for _ in 0..<wanted {
                guard let host = route.availableHost(now: now) else { break }
                let cid = nextConnectionID
                nextConnectionID += 1
                connections[cid] = Connection(route: key, host: host, state: .notReady)
                route.connections.insert(cid)
                actions.append(.open(cid, route.target.connection(to: host)))
            }
        }
        routes[key] = route
        return actions
    }

    private mutating func start(_ id: SpoolID, on cid: ConnectionID) -> [DeliveryAction] {
        guard var entry = entries[id] else { return [] }
        let pending = entry.envelope.pendingRecipients
        let cap = connections[cid].flatMap { routes[$0.route] }?.target.limits.maxRecipientsPerMessage ?? 0
        entry.batch = cap > 0 && pending.count > cap ? Array(pending.prefix(cap)) : pending
        entry.connection = cid
        entries[id] = entry
        if let content = takeContent(id) {
            connections[cid]?.state = .sending(id)
            return [.send(cid, entry.envelope, recipients: entry.batch, content: content)]
        }
        connections[cid]?.state = .preparing(id)
        return [.read(cid, entry.envelope, recipients: entry.batch)]
    }

    /// A route with nothing to do and nothing to remember is forgotten.
    private mutating func dropIfUnused(_ key: RouteKey) {
        guard let route = routes[key], route.connections.isEmpty, route.waiting.isEmpty, !route.pace.isSlowed,
              route.downSince == nil, route.hosts.values.allSatisfy({ $0.downSince == nil }) else { return }
        routes.removeValue(forKey: key)
    }

    mutating func connectionReady(_ cid: ConnectionID, now: Int64) -> [DeliveryAction] {
        guard let connection = connections[cid], var route = routes[connection.route] else { return [] }
        var actions: [DeliveryAction] = []
        if let since = route.hosts[connection.host]?.downSince {
            if route.target.hosts.count > 1 {
                actions.append(.note(.hostUp(route: route.target.routeName, host: DeliveryTarget.endpoint(connection.host, route.target.port),
                                             downForMilliseconds: now - since)))
            }
        }
        route.hosts[connection.host] = nil
        if let since = route.downSince {
            route.downSince = nil
            actions.append(.note(.routeUp(route: route.target.routeName, downForMilliseconds: now - since)))
        }
        route.lastFailure = nil
        routes[connection.route] = route
        if stopping || connection.state == .quitting {
            connections[cid]?.state = .quitting
            return actions + [.quit(cid)]
        }
        connections[cid]?.state = .idle(since: now)
        // A primary back up: a connection to a fallback host is not kept for more mail.
        // Over a throttled route's cap: one connection fewer, as the upstream asked.
        let fallback = route.availableHost(now: now).map { $0 != connection.host && route.waiting.isEmpty } ?? false
        if fallback || route.connections.count > route.pace.connections {
            connections[cid]?.state = .quitting
            return actions + [.quit(cid)]
        }
        return actions + dispatch(connection.route, now: now)
    }

    enum ReadResult {
        case ready
        /// Deleted by an operator (or already settled): nothing left to deliver.
        case notFound
        case failed(String)
    }

    /// The spool reader is done with the message of this connection.
    mutating func messageRead(_ cid: ConnectionID, _ id: SpoolID, _ result: ReadResult, now: Int64) -> [DeliveryAction] {
        // Anything else: the connection closed meanwhile, and the message was requeued then.
        guard let connection = connections[cid], connection.state == .preparing(id) else { return [] }
        switch result {
        case .ready where stopping:
            // A transaction not begun is not begun while stopping: the message goes at the next start.
            requeue(id, at: entries[id]?.dueAt ?? now)
            connections[cid]?.state = .quitting
            return [.quit(cid)]
        case .ready:
            connections[cid]?.state = .sending(id)
            return [.transmit(cid, id)]
        case .notFound:
            removeEntry(id)
            connections[cid]?.state = .idle(since: now)
            return dispatch(connection.route, now: now)
        case .failed(let reason):
            connections[cid]?.state = .idle(since: now)
            let failure = UpstreamFailure(step: .protocol, detail: "cannot read message from spool: \(reason)")
            return settle(id, .setupFailed(failure), connection: connection, tls: nil, now: now)
                + dispatch(connection.route, now: now)
        }
    }

    /// The connection could not take the message it was given (it is closing): the
    /// message is due again at once, no attempt counted.
    mutating func sendRefused(_ cid: ConnectionID, _ id: SpoolID, now: Int64) -> [DeliveryAction] {
        guard let connection = connections[cid], connection.state == .sending(id) || connection.state == .preparing(id) else { return [] }
        connections[cid]?.state = .quitting
        requeue(id, at: now)
        return []
    }

    mutating func messageFinished(_ cid: ConnectionID, _ id: SpoolID, _ outcome: DeliveryAttemptOutcome,
                                  tls: String?, now: Int64) -> [DeliveryAction] {
        guard let connection = connections[cid], connection.state == .sending(id) else { return [] }
        connections[cid]?.state = .notReady
        return settle(id, outcome, connection: connection, tls: tls, now: now)
    }

    mutating func connectionClosed(_ cid: ConnectionID, failure: UpstreamFailure?, now: Int64) -> [DeliveryAction] {
        guard let connection = connections.removeValue(forKey: cid) else { return [] }
        var actions: [DeliveryAction] = []
        routes[connection.route]?.connections.remove(cid)
        switch connection.state {
        case .preparing(let id):
            requeue(id, at: now)
        case .sending(let id):
            // A connection reports its message before it closes; if not, it was lost with it.
            let lost = failure ?? UpstreamFailure(step: .protocol, detail: "connection to \(connection.host) lost")
            actions += settle(id, .setupFailed(lost), connection: connection, tls: nil, now: now)
        default:
            break
        }
        guard var route = routes[connection.route] else { return actions }
        if let failure {
            if let reply = failure.reply, DeliveryPolicy.isThrottling(reply) {
                // Too fast, not down: slower, and the waiting mail stays with the route.
                if let change = route.pace.throttled(now: now, sentAt: connection.lastStartedAt) {
                    actions.append(.note(.pace(route: route.target.routeName, change: change, reply: reply.description)))
                }
            } else {
                actions += hostFailed(&route, key: connection.route, host: connection.host, failure: failure, now: now)
            }
        }
        routes[connection.route] = route
        actions += dispatch(connection.route, now: now)
        dropIfUnused(connection.route)
        return actions
    }

    /// The host is marked down; when it was the last one up, so is the route, and every
    /// message waiting for it had its attempt: it failed the same way.
    private mutating func hostFailed(_ route: inout Route, key: RouteKey, host: String, failure: UpstreamFailure, now: Int64) -> [DeliveryAction] {
        var actions: [DeliveryAction] = []
        var state = route.hosts[host] ?? HostState()
        let since = state.downSince ?? now
        let delay = rules.policy.downDelay(downForMilliseconds: now - since)
        state.downSince = since
        state.downUntil = now + delay
        state.lastFailure = failure.summary
        let wasDown = route.hosts[host]?.downSince != nil
        route.hosts[host] = state
        route.lastFailure = failure.summary
        guard route.availableHost(now: now) == nil else {
            if !wasDown {
                actions.append(.note(.hostDown(route: route.target.routeName, host: DeliveryTarget.endpoint(host, route.target.port),
                                               error: failure.summary, retryInMilliseconds: delay)))
            }
            return actions
        }
        let first = route.downSince == nil
        if first { route.downSince = now }
        let retryIn = (route.downUntil(now: now) ?? now + delay) - now
        actions.append(.note(.routeDown(route: route.target.routeName, error: failure.summary, retryInMilliseconds: retryIn, first: first)))
        let waiting = route.waiting
        route.waiting.removeAll()
        routes[key] = route
        let connection = Connection(route: key, host: host, state: .notReady)
        for id in waiting {
            actions += settle(id, .setupFailed(failure), connection: connection, tls: nil, now: now)
        }
        route = routes[key] ?? route
        return actions
    }

    // MARK: Outcomes

    /// Applies the policy's decision to the message and hands the record to the recorder.
    private mutating func settle(_ id: SpoolID, _ outcome: DeliveryAttemptOutcome, connection: Connection,
                                 tls: String?, now: Int64) -> [DeliveryAction] {
        guard var entry = entries[id] else { return [] }
        let pending = entry.envelope.pendingRecipients
        let batch = entry.batch.isEmpty ? pending : entry.batch.filter(pending.contains)
        let later = pending.filter { !batch.contains($0) }
        entry.route = nil
        entry.connection = nil
        entry.batch = []
        let decision = rules.policy.decide(outcome, pendingRecipients: batch, attempts: entry.envelope.attempts + 1,
                                           earlierRefusals: entry.envelope.refusedRecipients, laterRecipients: later,
                                           receivedAtMilliseconds: entry.envelope.queuedAt * 1000, nowMilliseconds: now)
        if decision.disposition != .nextBatch { entry.envelope.attempts += 1 }
        entry.envelope.doneRecipients.formUnion(decision.delivered)
        entry.envelope.refusedRecipients.merge(decision.refused) { _, new in new }
        let route = routes[connection.route]
        var record = DeliveryRecord(kind: .delivered, envelope: entry.envelope, decision: decision,
                                    route: route?.target.routeName ?? connection.host,
                                    host: DeliveryTarget.endpoint(connection.host, route?.target.port ?? 0),
                                    remoteHost: connection.host, tls: tls,
                                    dataReply: { if case .result(let result) = outcome { return result.dataReply }; return nil }(),
                                    atMilliseconds: now)
        var actions: [DeliveryAction] = []
        if decision.throttled, var route {
            if let change = route.pace.throttled(now: now, sentAt: entry.startedAt) {
                actions.append(.note(.pace(route: route.target.routeName, change: change, reply: decision.reason)))
            }
            routes[connection.route] = route
        }
        switch decision.disposition {
        case .remove:
            removeEntry(id)
            counters.delivered += 1
        case .nextBatch:
            record.kind = .progressed
            entries[id] = entry
            // The rest of the envelope goes next, ahead of messages that came later.
            if var route = routes[connection.route], !stopping {
                entries[id]?.route = connection.route
                route.waiting.insert(id, at: 0)
                routes[connection.route] = route
            } else {
                setDue(id, now)
            }
        case .retry(let at):
            let warn = !entry.envelope.delayWarned && rules.delayWarningDue(entry.envelope, now)
            if warn { entry.envelope.delayWarned = true }
            record.kind = .deferred(atMilliseconds: at)
            record.warnDelay = warn
            record.envelope = entry.envelope
            entries[id] = entry
            setDue(id, at)
            counters.deferred += 1
        case .deadLetter:
            removeEntry(id)
            counters.failed += 1
            record.kind = .failed
        }
        return [.record(record)] + actions
    }

    // MARK: Control

    /// Retry a message (or all) now, e.g. `smarthost queue flush`; failed hosts are probed again.
    mutating func flush(id: SpoolID? = nil) {
        for key in entries.keys where id == nil || key == id { setDue(key, 0) }
        resetHosts()
    }

    private mutating func resetHosts() {
        for key in routes.keys {
            for host in routes[key]!.hosts.keys { routes[key]?.hosts[host]?.downUntil = 0 }
        }
    }

    /// Drops a waiting message from memory (never one in flight).
    mutating func forget(id: SpoolID) {
        if entries[id]?.inFlight == false { removeEntry(id) }
    }

    /// An operator's hold or release; false when unknown or in flight.
    mutating func setHeld(_ id: SpoolID, _ held: Bool) -> Bool {
        guard let entry = entries[id], !entry.inFlight else { return false }
        entries[id]?.envelope.held = held
        if !held { setDue(id, 0) }
        return true
    }

    /// A reload: queued messages follow the new configuration from their next attempt on.
    mutating func replaceRules(_ newRules: Rules) {
        rules = newRules
        resetHosts()
        // The secret may be there now: held messages are tried at once.
        heldRoutesLogged.removeAll()
        for (id, entry) in entries where entry.awaitingCredential { setDue(id, 0) }
    }

    /// No new attempts; in-flight ones may finish; idle connections say QUIT.
    mutating func stop() -> [DeliveryAction] {
        stopping = true
        var actions: [DeliveryAction] = []
        // Messages waiting for a connection are no longer in flight: shutdown waits only
        // for those an upstream is busy with.
        for key in routes.keys {
            for id in routes[key]!.waiting { requeue(id, at: entries[id]?.dueAt ?? 0) }
            routes[key]?.waiting.removeAll()
        }
        for (cid, connection) in connections.sorted(by: { $0.key < $1.key }) {
            switch connection.state {
            case .idle, .notReady:
                connections[cid]?.state = .quitting
                actions.append(.quit(cid))
            default: break
            }
        }
        return actions
    }
}

/// Counts for `STATUS=` and logs.
struct DeliveryCounters: Sendable {
    var delivered = 0
    var deferred = 0
    var failed = 0
}
