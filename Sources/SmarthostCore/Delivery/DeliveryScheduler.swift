import Logging

/// The delivery side of the daemon, on the loop thread: knows every queued message and when
/// it is due, keeps a small pool of connections per upstream (reused for the next message),
/// marks a route down when it fails so its other messages wait instead of each timing out,
/// and applies `DeliveryPolicy` to every outcome.
final class DeliveryScheduler: DeliveryConnectionOwner {
    private struct Entry {
        var envelope: SpoolEnvelope
        var dueAt: Int64
        var inFlight = false
        /// The content of a small message just accepted, so its first attempt needs no
        /// spool read (and no trip to the spool reader). Dropped after that attempt.
        var content: [UInt8]?
    }

    private struct RoutePool {
        var connections: [UInt64: DeliveryConnection] = [:]
        var idle: [UInt64] = []
        var waiting: [SpoolID] = []
        var downUntil: Int64 = 0
        var lastFailure: String?
        /// Set when the route goes down, cleared when a connection succeeds again: one log
        /// line per transition, and how long it has been down.
        var downSince: Int64?
        var displayName = ""
    }

    static let idleQuitMilliseconds: Int64 = 5_000
    /// First wait before a failed spool update is tried again; doubles up to a minute.
    static let spoolRetryMilliseconds: Int64 = 1_000
    /// At most this much accepted content waits in memory for a first attempt (a route
    /// that is down must not make the queue a memory one); past it, delivery reads the spool.
    static let contentInMemoryBudget = 32 << 20
    /// Outcomes waiting to be recorded before the spool reader pauses (see `start`).
    static let recordBacklogLimit = 256

    private let loop: EventLoop
    private let spool: Spool
    private let resolver: HostResolver
    /// Reads messages for delivery (whole files, checksummed). Apart from `spoolRecorder`
    /// so that one route's deferrals, each an fsynced state file, never hold up the
    /// messages another route is waiting to send.
    private let spoolReader = WorkerThread(name: "spool-read")
    /// Records outcomes (delivered, deferred, failed) in order, one message's after another.
    private let spoolRecorder = WorkerThread(name: "spool-record")
    private let logger: Logger
    /// Access tokens of OAuth2 routes; outlives reloads (its cache is keyed by credential).
    private let tokens: OAuth2TokenBroker
    private var environment: DeliveryEnvironment
    private var entries: [SpoolID: Entry] = [:]
    private var dueQueue = DeliveryDueQueue()
    private var pools: [String: RoutePool] = [:]
    private var connectionTargets: [UInt64: String] = [:]
    private var idleTimers: [UInt64: TimerID] = [:]
    private var wakeTimer: TimerID?
    private var wakeAt: Int64 = .max
    private var nextSerial: UInt64 = 1
    private(set) var counters = DeliveryCounters()
    private var contentInMemoryBytes = 0
    /// Messages held because their route's secret is missing, and the routes already logged.
    private var held: Set<SpoolID> = []
    private var heldRoutesLogged: Set<String> = []
    /// Prometheus counters (`/metrics`); nil when not wanted (tests, `smarthost test`).
    var metrics: RelayMetrics? {
        didSet { tokens.metrics = metrics }
    }
    private var stopping = false

    init(loop: EventLoop, spool: Spool, environment: DeliveryEnvironment, logger: Logger) {
        self.loop = loop
        self.spool = spool
        self.environment = environment
        self.logger = logger
        self.resolver = HostResolver(loop: loop)
        self.tokens = OAuth2TokenBroker(loop: loop, logger: logger)
    }

    /// A reload: queued messages follow the new configuration from their next attempt on.
    func replaceEnvironment(_ newEnvironment: DeliveryEnvironment) {
        environment = newEnvironment
        for key in pools.keys { pools[key]?.downUntil = 0 }
        // The secret may be there now: held messages are tried at once.
        heldRoutesLogged.removeAll()
        for id in held { setDue(id, 0) }
        held.removeAll()
        schedulePump(at: 0)
    }

    var queuedCount: Int { entries.count }
    var deferredCount: Int { entries.values.filter { $0.envelope.attempts > 0 }.count }
    var routesDown: Int {
        let now = WallClock.nowMilliseconds()
        return pools.values.filter { $0.downUntil > now }.count
    }

    func enqueue(_ envelope: SpoolEnvelope) {
        enqueue(envelope, content: nil)
    }

    func enqueue(_ envelope: SpoolEnvelope, content: [UInt8]?) {
        let due = max(envelope.nextAttemptAt * 1000, 0)
        var entry = Entry(envelope: envelope, dueAt: due)
        if let content, contentInMemoryBytes + content.count <= Self.contentInMemoryBudget {
            contentInMemoryBytes += content.count
            entry.content = content
        }
        removeEntry(envelope.id)
        entries[envelope.id] = entry
        if envelope.held { return }
        setDue(envelope.id, due)
    }

    /// Every removal goes through here, so the in-memory budget stays exact.
    private func removeEntry(_ id: SpoolID) {
        _ = takeContent(id)
        held.remove(id)
        entries.removeValue(forKey: id)
    }

    private func takeContent(_ id: SpoolID) -> [UInt8]? {
        guard let content = entries[id]?.content else { return nil }
        entries[id]?.content = nil
        contentInMemoryBytes -= content.count
        return content
    }

    /// Retry a message (or all) now, e.g. `smarthost queue flush`.
    func flush(id: SpoolID? = nil) {
        for key in entries.keys where id == nil || key == id {
            setDue(key, 0)
        }
        for key in pools.keys { pools[key]?.downUntil = 0 }
        schedulePump(at: 0)
    }

    func forget(id: SpoolID) {
        if entries[id]?.inFlight == false { removeEntry(id) }
    }

    /// Stop: no new attempts; in-flight ones may finish; idle connections say QUIT.
    func stop() {
        stopping = true
        loop.cancel(wakeTimer)
        for pool in pools.values {
            for connection in pool.connections.values where !connection.isBusy { connection.quit() }
        }
    }

    var hasInFlight: Bool { entries.values.contains { $0.inFlight } }

    func shutdown() {
        for pool in pools.values {
            for connection in pool.connections.values { connection.close() }
        }
        resolver.stop()
        tokens.stop()
        spoolReader.stop()
        spoolRecorder.stop()
    }

    // MARK: pumping

    /// Every change of a message's due time goes through here, so the due queue knows it.
    private func setDue(_ id: SpoolID, _ due: Int64) {
        guard entries[id] != nil else { return }
        entries[id]?.dueAt = due
        dueQueue.push(id, due: due)
        schedulePump(at: due)
    }

    private func schedulePump(at due: Int64) {
        guard !stopping else { return }
        let now = WallClock.nowMilliseconds()
        let delay = max(due - now, 0)
        if due >= wakeAt, wakeTimer != nil { return }
        loop.cancel(wakeTimer)
        wakeAt = due
        wakeTimer = loop.schedule(afterMilliseconds: delay) { [weak self] in
            guard let self else { return }
            self.wakeTimer = nil
            self.wakeAt = .max
            self.pump()
        }
    }

    private func pump() {
        guard !stopping else { return }
        let now = WallClock.nowMilliseconds()
        while let (due, id) = dueQueue.popDue(now: now) {
            // A stale copy (the message was rescheduled, sent or removed since) is dropped.
            guard let entry = entries[id], !entry.inFlight, !entry.envelope.held, entry.dueAt == due else { continue }
            let target: DeliveryTarget
            do {
                target = try environment.target(for: entry.envelope)
            } catch {
                postpone(id: id, reason: "route: \(error)", possibleDuplicate: false)
                continue
            }
            if let missing = target.missingCredential {
                hold(id, target: target, reason: missing, now: now)
                continue
            }
            held.remove(id)
            var pool = pools[target.key] ?? RoutePool()
            if pool.downUntil > now {
                setDue(id, pool.downUntil)
                continue
            }
            entries[id]?.inFlight = true
            pool.waiting.append(id)
            pools[target.key] = pool
            dispatch(key: target.key, target: target)
        }
        if let earliest = dueQueue.earliest { schedulePump(at: earliest) }
    }

    /// Hands waiting messages of one route to idle connections, opening new ones up to the cap.
    private func dispatch(key: String, target: DeliveryTarget) {
        guard var pool = pools[key] else { return }
        while !pool.waiting.isEmpty, let serial = pool.idle.popLast(), let connection = pool.connections[serial] {
            guard connection.canSend else { continue }  // quitting: it will close by itself
            let id = pool.waiting.removeFirst()
            pools[key] = pool
            loop.cancel(idleTimers.removeValue(forKey: serial))
            start(id: id, on: connection)
            pool = pools[key] ?? pool
        }
        let busyOrStarting = pool.connections.count
        let wanted = min(pool.waiting.count, environment.config.queue.connectionsPerRoute - busyOrStarting)
        for _ in 0..<max(wanted, 0) {
            let serial = nextSerial
            nextSerial += 1
            let connection = DeliveryConnection(serial: serial, target: target, loop: loop, resolver: resolver,
                                                tlsContext: { [environment] in try environment.tlsContext(caFile: target.caFile) },
                                                tokens: tokens, owner: self)
            let upstream = target.displayName
            connection.onStep = { [weak self] step, seconds in
                self?.metrics?.upstreamStep(step, upstream: upstream, seconds: seconds)
            }
            pool.connections[serial] = connection
            connectionTargets[serial] = key
            pools[key] = pool
            connection.start()
            pool = pools[key] ?? pool
        }
        pools[key] = pool
    }

    /// Reading and rewriting the message happens on the spool reader; the connection is
    /// reserved meanwhile (`reserved`), so nothing else is sent on it.
    private func start(id: SpoolID, on connection: DeliveryConnection) {
        guard let entry = entries[id] else { return releaseIdle(connection) }
        if connection.canSend, let content = takeContent(id) {
            // Small and just accepted: rewriting it costs less than a hop to the worker.
            return connection.send(messageID: id, message: environment.prepare(entry.envelope, content: content))
        }
        connection.reserved = true
        let environment = self.environment
        let spool = self.spool
        let envelope = entry.envelope
        let loop = self.loop
        let back = LoopCallback<Result<UpstreamMessage, Error>> { [weak self, weak connection] result in
            guard let self else { return }
            guard let connection else {
                // The connection went away while the worker read the message: the message
                // must not stay "in flight" with nothing carrying it until a restart.
                self.entries[id]?.inFlight = false
                self.setDue(id, 0)
                return
            }
            connection.reserved = false
            switch result {
            case .success(let message) where connection.canSend:
                connection.send(messageID: id, message: message)
            case .success:
                self.entries[id]?.inFlight = false
                self.setDue(id, 0)
            case .failure(let error as SpoolError) where error.isNotFound:
                // Deleted by an operator (or already settled): nothing left to deliver.
                self.removeEntry(id)
                self.releaseIdle(connection)
            case .failure(let error):
                self.entries[id]?.inFlight = false
                self.postpone(id: id, reason: "cannot read message from spool: \(error)", possibleDuplicate: false)
                self.releaseIdle(connection)
            }
        }
        let recorder = spoolRecorder
        let backlogLimit = Self.recordBacklogLimit
        spoolReader.submit {
            // Reading may not run far ahead of recording: a delivery not yet recorded is
            // sent again after a crash, so the recorder's backlog bounds those duplicates.
            recorder.waitForBacklog(below: backlogLimit)
            let result = Result { () throws -> UpstreamMessage in try environment.prepare(envelope, spool: spool) }
            loop.execute { back.call(result) }
        }
    }

    private func releaseIdle(_ connection: DeliveryConnection) {
        guard let key = connectionTargets[connection.serial] else { return }
        if pools[key]?.waiting.isEmpty == false {
            let id = pools[key]!.waiting.removeFirst()
            return start(id: id, on: connection)
        }
        pools[key]?.idle.append(connection.serial)
        let serial = connection.serial
        idleTimers[serial] = loop.schedule(afterMilliseconds: Self.idleQuitMilliseconds) { [weak self, weak connection] in
            // Out of the idle list first: a connection that has sent QUIT takes no message.
            self?.pools[key]?.idle.removeAll { $0 == serial }
            self?.idleTimers.removeValue(forKey: serial)
            connection?.quit()
        }
        if stopping { connection.quit() }
    }

    // MARK: DeliveryConnectionOwner

    func deliveryConnection(_ connection: DeliveryConnection, _ event: DeliveryConnectionEvent) {
        switch event {
        case .ready: connectionReady(connection)
        case .finished(let id, let outcome): connectionFinished(connection, id: id, outcome: outcome)
        case .closed(let failure): connectionClosed(connection, failure: failure)
        }
    }

    private func connectionReady(_ connection: DeliveryConnection) {
        if let key = connectionTargets[connection.serial] {
            pools[key]?.lastFailure = nil
            if let since = pools[key]?.downSince {
                pools[key]?.downSince = nil
                logger.info("route up", metadata: ["route": "\(connection.target.displayName)",
                                                   "down_for": "\(DeliveryPolicy.humanDuration(WallClock.nowMilliseconds() - since))"])
            }
        }
        metrics?.routeUp(connection.target.displayName, up: true)
        releaseIdle(connection)
    }

    private func connectionFinished(_ connection: DeliveryConnection, id messageID: SpoolID, outcome: DeliveryAttemptOutcome) {
        entries[messageID]?.inFlight = false
        settle(id: messageID, outcome: outcome, target: connection.target, tls: connection.tlsDescription)
    }

    private func connectionClosed(_ connection: DeliveryConnection, failure: UpstreamFailure?) {
        let serial = connection.serial
        loop.cancel(idleTimers.removeValue(forKey: serial))
        guard let key = connectionTargets.removeValue(forKey: serial), var pool = pools[key] else { return }
        pool.connections.removeValue(forKey: serial)
        pool.idle.removeAll { $0 == serial }
        if let failure {
            // The route is down: its waiting messages wait with it instead of each timing out.
            let delay = environment.policy.retryDelay(attempts: 1)
            let now = WallClock.nowMilliseconds()
            pool.downUntil = now + delay
            pool.lastFailure = failure.summary
            pool.displayName = connection.target.displayName
            metrics?.routeUp(connection.target.displayName, up: false)
            if pool.downSince == nil {
                pool.downSince = now
                logger.warning("route down", metadata: ["route": "\(connection.target.displayName)", "error": "\(failure.summary)", "retry_in": "\(delay / 1000)s"])
            } else {
                logger.debug("route still down", metadata: ["route": "\(connection.target.displayName)", "error": "\(failure.summary)"])
            }
            // Every message waiting for this route had its attempt: it failed the same way.
            let waiting = pool.waiting
            pool.waiting.removeAll()
            pools[key] = pool
            for id in waiting {
                entries[id]?.inFlight = false
                settle(id: id, outcome: .setupFailed(failure), target: connection.target, tls: nil)
            }
            pool = pools[key] ?? pool
        }
        pools[key] = pool
        if !pool.waiting.isEmpty { dispatch(key: key, target: connection.target) }
        if pool.connections.isEmpty, pool.waiting.isEmpty, pool.downUntil == 0 { pools.removeValue(forKey: key) }
    }

    // MARK: outcomes

    private func settle(id: SpoolID, outcome: DeliveryAttemptOutcome, target: DeliveryTarget, tls: String?) {
        guard var entry = entries[id] else { return }
        let now = WallClock.nowMilliseconds()
        let pending = entry.envelope.pendingRecipients
        entry.envelope.attempts += 1
        let decision = environment.policy.decide(outcome, pendingRecipients: pending, attempts: entry.envelope.attempts,
                                                 earlierRefusals: entry.envelope.refusedRecipients,
                                                 receivedAtMilliseconds: entry.envelope.queuedAt * 1000, nowMilliseconds: now)
        entry.envelope.doneRecipients.formUnion(decision.delivered)
        entry.envelope.refusedRecipients.merge(decision.refused) { _, new in new }
        var meta: Logger.Metadata = [
            "id": "\(id)", "org": "\(entry.envelope.org ?? "-")", "layer": "\(entry.envelope.layer ?? "-")",
            "route": "\(target.displayName)", "attempts": "\(entry.envelope.attempts)",
            "delay": "\(DeliveryPolicy.humanDuration(now - entry.envelope.receivedAt * 1000))",
        ]
        if let tls { meta["tls"] = "\(tls)" }
        if case .result(let result) = outcome, let reply = result.dataReply { meta["reply"] = "\(reply.description)" }
        let labels = RelayMetrics.MessageLabels(org: entry.envelope.org, layer: entry.envelope.layer)
        switch decision.disposition {
        case .remove:
            removeEntry(id)
            counters.delivered += 1
            metrics?.delivered(labels, bytes: entry.envelope.size,
                               latencySeconds: Double(now - entry.envelope.receivedAt * 1000) / 1000)
            logger.info("delivered", metadata: meta.merging(["to": "\(decision.delivered.joined(separator: ","))"]) { $1 })
            spoolAction("markDelivered", id) { try $0.markDelivered(id) }
        case .retry(let at):
            let warn = !entry.envelope.delayWarned
                && NoticePlan.delayWarningDue(for: entry.envelope, config: environment.config, nowMilliseconds: now)
            if warn { entry.envelope.delayWarned = true }
            entries[id] = entry
            setDue(id, at)
            counters.deferred += 1
            metrics?.deferred(labels)
            meta["reason"] = "\(decision.reason)"
            meta["retry_in"] = "\((at - now) / 1000)s"
            if decision.possibleDuplicate { meta["possible_duplicate"] = "yes" }
            logger.warning("deferred", metadata: meta)
            let envelope = entry.envelope
            if warn { queueNotice(.delay, for: envelope, reason: decision.reason, target: target) }
            spoolAction("markDeferred", id) {
                try $0.markDeferred(id, attempts: envelope.attempts, nextAttemptAt: at / 1000,
                                       lastError: decision.reason, doneRecipients: envelope.doneRecipients,
                                       refusedRecipients: envelope.refusedRecipients)
            }
        case .deadLetter:
            removeEntry(id)
            counters.failed += 1
            metrics?.failed(labels)
            meta["reason"] = "\(decision.reason)"
            logger.error("failed", metadata: meta)
            let envelope = entry.envelope
            // Before the move: once the notice is durable, a crash can at worst repeat it.
            queueNotice(.failure, for: envelope, reason: decision.reason, target: target)
            spoolAction("moveToFailed", id) { try $0.moveToFailed(id, reason: decision.reason, progress: envelope) }
        }
    }

    /// A failure notice or delay warning (`NoticePlan` decides whether and to whom), made
    /// and committed on the spool recorder in order with the message's own updates, then
    /// delivered like any queued message.
    private func queueNotice(_ kind: DeliveryStatusNotice.Kind, for envelope: SpoolEnvelope, reason: String,
                             target: DeliveryTarget) {
        let config = environment.config
        guard !NoticePlan.recipients(for: envelope, config: config).isEmpty else { return }
        let queued = LoopCallback<(SpoolEnvelope, [UInt8])> { [weak self] notice in
            self?.logger.info("notice queued", metadata: [
                "id": "\(notice.0.id)", "about": "\(envelope.id)", "kind": "\(kind == .failure ? "failure" : "delay")",
                "to": "\(notice.0.recipients.joined(separator: ","))", "org": "\(notice.0.org ?? "-")",
            ])
            self?.enqueue(notice.0, content: notice.1)
        }
        let loop = self.loop
        spoolAction("queueNotice", envelope.id) { spool in
            let content = try? spool.readMessage(envelope.id)
            let token = String(UInt64.random(in: .min ... .max), radix: 36)
            let now = Int(WallClock.nowSeconds())
            let plan = kind == .failure
                ? NoticePlan.failure(for: envelope, reason: reason, remoteMTA: target.host, config: config,
                                     content: content, nowUnixSeconds: now, token: token)
                : NoticePlan.delay(for: envelope, reason: reason, remoteMTA: target.host, config: config,
                                   content: content, nowUnixSeconds: now, token: token)
            guard let plan else { return }
            let committed = try NoticeSpooler.commit(plan, resolvedFrom: envelope, config: config, spool: spool)
            // After the notice is durable: a crash in between warns twice, never not at all.
            // Not retried: a retry of this action would commit the notice again.
            if kind == .delay { try? spool.markDelayWarned(envelope.id) }
            loop.execute { queued.call(committed) }
        }
    }

    /// Not an attempt: nothing is written to the spool, so a restart with the secret in
    /// place finds the message due at once. One log line per route, not per message.
    private func hold(_ id: SpoolID, target: DeliveryTarget, reason: String, now: Int64) {
        held.insert(id)
        setDue(id, now + environment.config.queue.retryMinMs)
        if heldRoutesLogged.insert(target.key).inserted {
            logger.error("route has no credentials: holding its mail",
                         metadata: ["upstream": "\(target.displayName)", "reason": "\(reason)"])
        }
    }

    var heldCount: Int { held.count }

    private func postpone(id: SpoolID, reason: String, possibleDuplicate: Bool) {
        guard var entry = entries[id] else { return }
        let delay = environment.policy.retryDelay(attempts: max(entry.envelope.attempts, 1))
        entry.inFlight = false
        entries[id] = entry
        setDue(id, WallClock.nowMilliseconds() + delay)
        logger.warning("deferred", metadata: ["id": "\(id)", "reason": "\(reason)"])
    }

    /// Spool updates fsync: they run on the spool recorder, in order, never on the loop.
    /// A failed one (an unwritable or full spool) is tried again with back-off until it
    /// lands: a lost "delivered" would mean a duplicate after the next restart.
    private func spoolAction(_ name: String, _ id: SpoolID, attempt: Int = 1,
                             _ body: @escaping @Sendable (Spool) throws -> Void) {
        let spool = self.spool
        let logger = self.logger
        let loop = self.loop
        let again = LoopCallback<Void> { [weak self] in
            guard let self, !self.stopping else { return }
            let delay = min(Self.spoolRetryMilliseconds << min(attempt - 1, 6), 60_000)
            _ = self.loop.schedule(afterMilliseconds: delay) { [weak self] in
                self?.spoolAction(name, id, attempt: attempt + 1, body)
            }
        }
        spoolRecorder.submit {
            do {
                try body(spool)
                if attempt > 1 {
                    logger.info("spool update done", metadata: ["id": "\(id)", "operation": "\(name)", "attempts": "\(attempt)"])
                }
            } catch let error as SpoolError where error.isNotFound {
                // Deleted or moved by an operator meanwhile: nothing left to record.
            } catch {
                if attempt == 1 {
                    logger.error("spool update failed, will retry", metadata: ["id": "\(id)", "operation": "\(name)", "error": "\(error)"])
                }
                loop.execute { again.call(()) }
            }
        }
    }
}

/// Counts for `STATUS=` and logs.
struct DeliveryCounters: Sendable {
    var delivered = 0
    var deferred = 0
    var failed = 0
}

// MARK: - control socket (`smarthost queue …`)

/// In this file because it reads the private entries; the rules are in `QueueControlService`.
extension DeliveryScheduler: ControlQueue {
    func controlState(of id: SpoolID) -> ControlQueueState {
        guard let entry = entries[id] else { return .unknown }
        return entry.inFlight ? .inFlight : .waiting
    }

    /// Routes marked down now, for `smarthost status`, `queue list` and `STATUS=`.
    func routesDownNow(nowMilliseconds now: Int64) -> [ControlRouteDown] {
        pools.values.compactMap { pool -> ControlRouteDown? in
            guard let since = pool.downSince, pool.downUntil > now || pool.lastFailure != nil else { return nil }
            return ControlRouteDown(upstream: pool.displayName, downSeconds: (now - since) / 1000,
                                    retryInSeconds: max(pool.downUntil - now, 0) / 1000, error: pool.lastFailure ?? "-")
        }.sorted { $0.upstream < $1.upstream }
    }

    /// Seconds since the oldest queued message was received; 0 for an empty queue.
    func oldestAgeSeconds(nowSeconds: Int64) -> Int64 {
        entries.values.map { nowSeconds - $0.envelope.receivedAt }.max().map { max($0, 0) } ?? 0
    }

    /// Queue size and oldest age per org and route, for `/metrics` (loop thread).
    func queueByLabels(nowSeconds: Int64) -> [RelayMetrics.MessageLabels: (count: Int, oldestSeconds: Int64)] {
        var out: [RelayMetrics.MessageLabels: (count: Int, oldestSeconds: Int64)] = [:]
        for entry in entries.values {
            let labels = RelayMetrics.MessageLabels(org: entry.envelope.org, layer: entry.envelope.layer)
            let age = max(nowSeconds - entry.envelope.receivedAt, 0)
            let current = out[labels] ?? (0, 0)
            out[labels] = (current.count + 1, max(current.oldestSeconds, age))
        }
        return out
    }

    var controlCounts: ControlStatus {
        var status = ControlStatus(queued: queuedCount, deferred: deferredCount,
                                   inFlight: entries.values.filter { $0.inFlight }.count,
                                   delivered: counters.delivered, failed: counters.failed, routesDown: routesDown)
        status.awaitingCredentials = heldCount
        status.held = entries.values.filter { $0.envelope.held }.count
        status.oldestSeconds = Int(oldestAgeSeconds(nowSeconds: WallClock.nowSeconds()))
        return status
    }

    func setHeld(_ id: SpoolID, _ held: Bool) -> Bool {
        guard let entry = entries[id], !entry.inFlight else { return false }
        entries[id]?.envelope.held = held
        if !held { setDue(id, 0) }
        return true
    }

    var controlRoutesDown: [ControlRouteDown] { routesDownNow(nowMilliseconds: WallClock.nowMilliseconds()) }
}
