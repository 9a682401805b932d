/// The delivery side's decisions, as a value: every queued message and when it is due,
/// each route's connections, waiting messages, failed hosts and pace. Events go in
/// (enqueue, tick, a connection ready, a message finished or read, a connection closed,
/// control requests); actions come out (`DeliveryAction`: open, read, send, quit, record,
/// note). No I/O, no clock of its own: every event carries `now` on both clocks
/// (`DeliveryInstant`); every deadline it keeps is monotonic, and only what goes to the
/// spool is wall time. No callbacks: an event is fully applied before the driver performs
/// its actions, so an action that reports back at once cannot find the queue half-changed.
/// The connection events and outcomes are in `DeliveryQueueEvents.swift`.
struct DeliveryQueue {
    typealias ConnectionID = UInt64

    static let idleQuitMilliseconds: Int64 = 5_000
    /// At most this much accepted content waits in memory for a first attempt (a route
    /// that is down must not make the queue a memory one); past it, delivery reads the spool.
    static let contentInMemoryBudget = 32 << 20

    private(set) var rules: Rules
    internal(set) var entries: [SpoolID: Entry] = [:]
    private var dueQueue = DeliveryDueQueue()
    internal(set) var routes: [RouteKey: Route] = [:]
    internal(set) var connections: [ConnectionID: Connection] = [:]
    private var nextConnectionID: ConnectionID = 1
    private(set) var contentInMemoryBytes = 0
    private var heldRoutesLogged: Set<RouteKey> = []
    internal(set) var counters = DeliveryCounters()
    private(set) var stopping = false

    init(rules: Rules) {
        self.rules = rules
    }

    // MARK: Messages in

    /// A message accepted, recovered or a notice: due at its persisted (wall) due time.
    mutating func enqueue(_ envelope: SpoolEnvelope, content: [UInt8]? = nil, now: DeliveryInstant) {
        removeEntry(envelope.id)
        let due = now.monotonic(atWall: max(envelope.nextAttemptAt * 1000, 0))
        var entry = Entry(envelope: envelope, dueAt: due)
        if let content, contentInMemoryBytes + content.count <= Self.contentInMemoryBudget {
            contentInMemoryBytes += content.count
            entry.content = content
        }
        entries[envelope.id] = entry
        if !envelope.held { setDue(envelope.id, due) }
    }

    /// Every removal goes through here, so the in-memory budget stays exact.
    mutating func removeEntry(_ id: SpoolID) {
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
    mutating func setDue(_ id: SpoolID, _ due: Int64) {
        guard entries[id] != nil else { return }
        entries[id]?.dueAt = due
        dueQueue.push(id, due: due)
    }

    /// Back to waiting for its due time, no attempt made (its connection went away).
    mutating func requeue(_ id: SpoolID, at due: Int64) {
        entries[id]?.route = nil
        entries[id]?.connection = nil
        entries[id]?.batch = []
        setDue(id, due)
    }

    // MARK: Time

    /// Everything due at `now`: messages to start, idle connections to quit, paces to
    /// recover, hosts to probe again.
    mutating func tick(now: DeliveryInstant) -> [DeliveryAction] {
        guard !stopping else { return [] }
        let now = now.monotonic
        var actions: [DeliveryAction] = []
        var touched: Set<RouteKey> = []
        while let (due, id) = dueQueue.popDue(now: now) {
            // A stale copy (the message was rescheduled, sent or removed since) is dropped.
            guard let entry = entries[id], !entry.inFlight, !entry.envelope.held, entry.dueAt == due else { continue }
            if let key = take(id, entry.envelope, now: now, actions: &actions) { touched.insert(key) }
        }
        for key in Array(routes.keys) {
            guard routes[key]?.pace.isSlowed == true || routes[key]?.waiting.isEmpty == false else { continue }
            let label = label(for: key)
            let notes = routes[key]?.recoverPace(now: now, label: label) ?? []
            actions += notes.map(DeliveryAction.note)
            if !notes.isEmpty || routes[key]?.waiting.isEmpty == false { touched.insert(key) }
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

    /// A due message joins its route's waiting list, unless its secret is missing or its
    /// route is down; returns the route it joined.
    private mutating func take(_ id: SpoolID, _ envelope: SpoolEnvelope, now: Int64,
                               actions: inout [DeliveryAction]) -> RouteKey? {
        let target = rules.target(envelope)
        if let missing = target.missingCredential {
            entries[id]?.awaitingCredential = true
            setDue(id, now + rules.holdRecheckMilliseconds)
            if heldRoutesLogged.insert(target.key).inserted {
                actions.append(.note(.held(route: target.routeName, reason: missing)))
            }
            return nil
        }
        entries[id]?.awaitingCredential = false
        let key = target.key
        // A reload that changes the route's limits starts its pace afresh.
        let pace = RoutePace(limits: target.limits, defaultConnections: rules.defaultConnections)
        routes[key, default: Route(target: target, pace: pace)].resolved(target, pace: pace, org: envelope.org)
        if let downUntil = routes[key]?.downUntil(now: now) {
            setDue(id, downUntil)
            return nil
        }
        entries[id]?.route = key
        routes[key]?.waiting.append(id)
        return key
    }

    /// When `tick` next has something to do (monotonic); nil when nothing is planned.
    mutating func nextWake(now: DeliveryInstant) -> Int64? {
        guard !stopping else { return nil }
        let now = now.monotonic
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
    mutating func dispatch(_ key: RouteKey, now: Int64) -> [DeliveryAction] {
        guard routes[key] != nil, !stopping else { return [] }
        var actions: [DeliveryAction] = []
        var idle = routes[key]!.connections.filter {
            if case .idle = connections[$0]?.state { return true }
            return false
        }.sorted()
        while routes[key]?.waiting.isEmpty == false, let cid = idle.popLast(), routes[key]!.pace.mayStart(now: now) {
            let id = routes[key]!.waiting.removeFirst()
            routes[key]!.pace.started(now: now)
            entries[id]?.startedAt = now
            connections[cid]?.lastStartedAt = now
            actions += start(id, on: cid)
        }
        guard var route = routes[key] else { return actions }
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

    /// The message goes to the connection: at once when its content is in memory, else
    /// after the spool reader has read it (`messageRead`). Either way one `.send`.
    private mutating func start(_ id: SpoolID, on cid: ConnectionID) -> [DeliveryAction] {
        guard var entry = entries[id] else { return [] }
        let pending = entry.envelope.pendingRecipients
        let cap = connections[cid].flatMap { routes[$0.route] }?.target.limits.maxRecipientsPerMessage ?? 0
        entry.batch = cap > 0 && pending.count > cap ? Array(pending.prefix(cap)) : pending
        entry.connection = cid
        entries[id] = entry
        if let content = takeContent(id) {
            connections[cid]?.state = .sending(id)
            // Small and just accepted: rewriting it costs less than a hop to the worker.
            return [.send(cid, id, rules.prepare(entry.envelope, content, entry.batch))]
        }
        connections[cid]?.state = .preparing(id)
        return [.read(cid, entry.envelope, recipients: entry.batch)]
    }

    /// A route with nothing to do and nothing to remember is forgotten.
    mutating func dropIfUnused(_ key: RouteKey) {
        if routes[key]?.isUnused == true { routes.removeValue(forKey: key) }
    }

    /// How notes name the route (`RouteLabel`).
    func label(for key: RouteKey) -> RouteLabel {
        RouteLabel(name: routes[key]?.target.routeName ?? key.hosts.joined(separator: ","), orgs: orgsShown(for: key))
    }

    // MARK: Control

    /// Retry a message (or all) now, e.g. `smarthost queue flush`; failed hosts are probed again.
    mutating func flush(id: SpoolID? = nil) {
        for key in entries.keys where id == nil || key == id { setDue(key, 0) }
        resetHosts()
    }

    private mutating func resetHosts() {
        for key in routes.keys { routes[key]?.probeHostsNow() }
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
