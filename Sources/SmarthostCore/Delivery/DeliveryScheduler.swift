import Logging

/// Drives the delivery queue on the loop thread: feeds it events (time, connection
/// reports, spool reads, control requests) and performs the actions it returns — opening
/// connections, reading messages on the spool reader, handing them over, and passing
/// outcomes to the recorder. Every decision is `DeliveryQueue`'s.
final class DeliveryScheduler: UpstreamConnectionOwner {
    private let loop: EventLoop
    private let spool: Spool
    private let resolver: HostResolver
    /// Reads messages for delivery (whole files, checksummed). Apart from the recorder so
    /// that one route's deferrals, each an fsynced state file, never hold up the messages
    /// another route is waiting to send.
    private let spoolReader = WorkerThread(name: "spool-read")
    private let recorder: DeliveryOutcomeRecorder
    /// Access tokens of OAuth2 routes; outlives reloads (its cache is keyed by credential).
    private let tokens: OAuth2TokenBroker
    private var environment: DeliveryEnvironment
    private var queue: DeliveryQueue
    private var connections: [DeliveryQueue.ConnectionID: any UpstreamConnection] = [:]
    /// Messages read for a connection, until the queue says they may go (`transmit`).
    private var prepared: [DeliveryQueue.ConnectionID: UpstreamMessage] = [:]
    private var pendingActions: [DeliveryAction] = []
    private var performing = false
    private var wakeTimer: TimerID?
    private var wakeAt: Int64 = .max
    private var onDrained: (() -> Void)?
    private let clock: () -> Int64
    /// Makes each connection by its target's transport (`UpstreamConnectionFactory`).
    private let connectionFactory: any UpstreamConnecting

    /// Prometheus counters (`/metrics`); nil when not wanted (tests, `smarthost test`).
    var metrics: RelayMetrics? {
        didSet {
            tokens.metrics = metrics
            recorder.metrics = metrics
        }
    }

    init(loop: EventLoop, spool: Spool, environment: DeliveryEnvironment, logger: Logger,
         clock: @escaping () -> Int64 = WallClock.nowMilliseconds) {
        self.loop = loop
        self.spool = spool
        self.environment = environment
        self.clock = clock
        self.resolver = HostResolver(loop: loop)
        self.tokens = OAuth2TokenBroker(loop: loop, logger: logger)
        self.connectionFactory = UpstreamConnectionFactory(loop: loop, resolver: resolver, tokens: tokens)
        self.recorder = DeliveryOutcomeRecorder(loop: loop, spool: spool, config: environment.config, logger: logger)
        self.queue = DeliveryQueue(rules: environment.queueRules)
        recorder.onNoticeQueued = { [weak self] envelope, content in self?.enqueue(envelope, content: content) }
    }

    // MARK: Events in

    func enqueue(_ envelope: SpoolEnvelope) {
        enqueue(envelope, content: nil)
    }

    func enqueue(_ envelope: SpoolEnvelope, content: [UInt8]?) {
        queue.enqueue(envelope, content: content)
        perform([])
    }

    /// A reload: queued messages follow the new configuration from their next attempt on.
    func replaceEnvironment(_ newEnvironment: DeliveryEnvironment) {
        environment = newEnvironment
        recorder.config = newEnvironment.config
        queue.replaceRules(newEnvironment.queueRules)
        perform([])
    }

    /// Retry a message (or all) now, e.g. `smarthost queue flush`.
    func flush(id: SpoolID? = nil) {
        queue.flush(id: id)
        perform([])
    }

    func forget(id: SpoolID) {
        queue.forget(id: id)
    }

    /// Stop: no new attempts; in-flight ones may finish; idle connections say QUIT.
    /// `drained` runs once (on the loop) when no message is with an upstream any more and
    /// every connection has closed: their outcomes are with the recorder by then.
    func stop(drained: @escaping () -> Void) {
        loop.cancel(wakeTimer)
        wakeTimer = nil
        onDrained = drained
        perform(queue.stop())
    }

    /// Messages with an upstream right now (a graceful stop waits for them).
    var inFlightCount: Int { queue.inFlightCount }

    private func reportIfDrained() {
        guard queue.stopping, let drained = onDrained, !queue.hasInFlight, connections.isEmpty else { return }
        onDrained = nil
        // Not from inside `perform`: the daemon's shutdown closes connections, which report back.
        _ = loop.schedule(afterMilliseconds: 0, drained)
    }

    func shutdown() {
        for connection in connections.values { connection.close() }
        resolver.stop()
        tokens.stop()
        spoolReader.stop()
        recorder.stop()
    }

    private func tick() {
        wakeTimer = nil
        wakeAt = .max
        perform(queue.tick(now: clock()))
    }

    // MARK: UpstreamConnectionOwner

    func upstreamConnection(_ connection: any UpstreamConnection, _ event: UpstreamConnectionEvent) {
        let cid = connection.serial
        let now = clock()
        switch event {
        case .ready:
            metrics?.routeUp(connection.target.displayName, up: true)
            perform(queue.connectionReady(cid, now: now))
        case .finished(let id, let outcome):
            perform(queue.messageFinished(cid, id, DeliveryAttemptOutcome(outcome), tls: connection.tlsDescription, now: now))
        case .closed(let failure):
            connections.removeValue(forKey: cid)
            prepared.removeValue(forKey: cid)
            perform(queue.connectionClosed(cid, failure: failure, now: now))
        }
    }

    // MARK: Actions out

    /// Performs actions in order. An action may report back at once (a connection that
    /// fails as it starts): the queue has applied that event already, and its actions
    /// join the end of the list instead of running in the middle of this one.
    private func perform(_ actions: [DeliveryAction]) {
        pendingActions.append(contentsOf: actions)
        guard !performing else { return }
        performing = true
        var index = 0
        while index < pendingActions.count {
            let action = pendingActions[index]
            index += 1
            perform(action)
        }
        pendingActions.removeAll()
        performing = false
        scheduleWake()
        reportIfDrained()
    }

    private func perform(_ action: DeliveryAction) {
        switch action {
        case .open(let cid, let target):
            let connection = connectionFactory.connection(
                serial: cid, target: target, tlsContext: { [environment] in try environment.tlsContext(caFile: target.caFile) },
                owner: self)
            let upstream = target.displayName
            connection.onStep = { [weak self] step, seconds in
                self?.metrics?.upstreamStep(step, upstream: upstream, seconds: seconds)
            }
            connections[cid] = connection
            connection.start()
        case .send(let cid, let envelope, let recipients, let content):
            // Small and just accepted: rewriting it costs less than a hop to the worker.
            transmit(cid, envelope.id, environment.prepare(envelope, content: content, recipients: recipients))
        case .read(let cid, let envelope, let recipients):
            read(cid, envelope, recipients: recipients)
        case .transmit(let cid, let id):
            guard let message = prepared.removeValue(forKey: cid) else { return }
            transmit(cid, id, message)
        case .quit(let cid):
            connections[cid]?.quit()
        case .record(let record):
            recorder.record(record)
        case .note(let note):
            recorder.note(note)
        }
    }

    private func transmit(_ cid: DeliveryQueue.ConnectionID, _ id: SpoolID, _ message: UpstreamMessage) {
        guard let connection = connections[cid], connection.canSend else {
            return perform(queue.sendRefused(cid, id, now: clock()))
        }
        connection.send(messageID: id, message: message)
    }

    /// Reading and rewriting the message happens on the spool reader; the queue keeps the
    /// connection reserved meanwhile.
    private func read(_ cid: DeliveryQueue.ConnectionID, _ envelope: SpoolEnvelope, recipients: [String]) {
        let environment = self.environment
        let spool = self.spool
        let loop = self.loop
        let id = envelope.id
        let back = LoopCallback<Result<UpstreamMessage, Error>> { [weak self] result in
            guard let self else { return }
            let outcome: DeliveryQueue.ReadResult
            switch result {
            case .success(let message):
                self.prepared[cid] = message
                outcome = .ready
            case .failure(let error as SpoolError) where error.isNotFound:
                outcome = .notFound
            case .failure(let error):
                outcome = .failed("\(error)")
            }
            let actions = self.queue.messageRead(cid, id, outcome, now: self.clock())
            // Not wanted any more (the connection closed meanwhile): not kept either.
            if !actions.contains(where: { if case .transmit = $0 { return true }; return false }) {
                self.prepared.removeValue(forKey: cid)
            }
            self.perform(actions)
        }
        let recorderThread = recorder.worker
        let backlogLimit = DeliveryOutcomeRecorder.backlogLimit
        spoolReader.submit {
            // Reading may not run far ahead of recording: a delivery not yet recorded is
            // sent again after a crash, so the recorder's backlog bounds those duplicates.
            recorderThread.waitForBacklog(below: backlogLimit)
            let result = Result { () throws -> UpstreamMessage in
                try environment.prepare(envelope, content: spool.readMessage(id), recipients: recipients)
            }
            loop.execute { back.call(result) }
        }
    }

    private func scheduleWake() {
        guard !queue.stopping else { return }
        let now = clock()
        guard let due = queue.nextWake(now: now) else { return }
        if due >= wakeAt, wakeTimer != nil { return }
        loop.cancel(wakeTimer)
        wakeAt = due
        wakeTimer = loop.schedule(afterMilliseconds: max(due - now, 0)) { [weak self] in self?.tick() }
    }

    // MARK: What it knows

    var counters: DeliveryCounters { queue.counters }
    var queuedCount: Int { queue.queuedCount }
    var deferredCount: Int { queue.deferredCount }
    var routesDown: Int { queue.routesDown(now: clock()) }
    var heldCount: Int { queue.awaitingCredentialCount }
    var hasInFlight: Bool { queue.hasInFlight }

    func routesDownNow(nowMilliseconds now: Int64) -> [ControlRouteDown] {
        queue.routesDownNow(now: now)
    }

    var slowedRoutes: [ControlRouteSlowed] {
        queue.slowedRoutes
    }

    /// Seconds since the oldest queued message was received; 0 for an empty queue.
    func oldestAgeSeconds(nowSeconds: Int64) -> Int64 {
        queue.entries.values.map { nowSeconds - $0.envelope.receivedAt }.max().map { max($0, 0) } ?? 0
    }

    /// Queue size and oldest age per org and route, for `/metrics` (loop thread).
    func queueByLabels(nowSeconds: Int64) -> [RelayMetrics.MessageLabels: (count: Int, oldestSeconds: Int64)] {
        var out: [RelayMetrics.MessageLabels: (count: Int, oldestSeconds: Int64)] = [:]
        for entry in queue.entries.values {
            let labels = RelayMetrics.MessageLabels(org: entry.envelope.org, layer: entry.envelope.layer)
            let age = max(nowSeconds - entry.envelope.receivedAt, 0)
            let current = out[labels] ?? (0, 0)
            out[labels] = (current.count + 1, max(current.oldestSeconds, age))
        }
        return out
    }
}

// MARK: - control socket (`smarthost queue …`)

extension DeliveryScheduler: ControlQueue {
    func controlState(of id: SpoolID) -> ControlQueueState {
        queue.state(of: id)
    }

    var controlCounts: ControlStatus {
        var status = ControlStatus(queued: queue.queuedCount, deferred: queue.deferredCount, inFlight: queue.inFlightCount,
                                   delivered: queue.counters.delivered, failed: queue.counters.failed,
                                   routesDown: routesDown)
        status.routesSlowed = queue.slowedRoutes.count
        status.awaitingCredentials = queue.awaitingCredentialCount
        status.held = queue.heldCount
        status.oldestSeconds = Int(oldestAgeSeconds(nowSeconds: WallClock.nowSeconds()))
        return status
    }

    func setHeld(_ id: SpoolID, _ held: Bool) -> Bool {
        let changed = queue.setHeld(id, held)
        if changed { perform([]) }
        return changed
    }

    var controlRoutesDown: [ControlRouteDown] { routesDownNow(nowMilliseconds: clock()) }

    var controlRoutesSlowed: [ControlRouteSlowed] { slowedRoutes }
}
