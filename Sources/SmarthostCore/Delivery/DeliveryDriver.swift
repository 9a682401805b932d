import Logging

/// Drives the delivery queue on the loop thread: every event comes in through `handle`
/// (a message queued, a notice committed, a reload, a flush, a spool read done, the timer,
/// a connection's report) and is applied to the `DeliveryQueue` value; the driver then
/// performs the actions it returns — opening connections through the factory, reading
/// messages on the spool reader, handing each message to its connection (`.send`, the one
/// hand-off), passing outcomes to the recorder. Every decision is the queue's.
final class DeliveryDriver: UpstreamConnectionOwner {
    /// Everything that changes the queue, from the daemon, the workers and the loop.
    enum Event {
        /// Accepted (with its content when it is small and just written), recovered, released.
        case queued(SpoolEnvelope, content: [UInt8]?)
        /// A reload: queued messages follow the new configuration from their next attempt on.
        case reload(DeliveryEnvironment)
        /// `smarthost queue flush`: a message (or all) now.
        case flush(SpoolID?)
        /// The spool reader read and prepared a message for a connection.
        case read(DeliveryQueue.ConnectionID, SpoolID, DeliveryQueue.ReadResult)
        /// The recorder's word on a record.
        case recorder(DeliveryOutcomeRecorder.Report)
        /// The wake timer fired.
        case tick
    }

    private let loop: EventLoop
    private let spool: Spool
    private let resolver: HostResolver
    /// Reads messages for delivery (whole files, checksummed). Apart from the recorder so
    /// that one route's deferrals, each an fsynced state file, never hold up the messages
    /// another route is waiting to send.
    private let spoolReader = WorkerThread(name: "spool-read")
    private let recorder: DeliveryOutcomeRecorder
    /// Records handed to the recorder and not yet written; at `backlogLimit`, spool reads
    /// wait in `readsHeld` (on the loop: no thread blocks on another's backlog).
    private var recordsOutstanding = 0
    private var readsHeld: [(DeliveryQueue.ConnectionID, SpoolEnvelope, [String])] = []
    /// Access tokens of OAuth2 routes; outlives reloads (its cache is keyed by credential).
    private let tokens: OAuth2TokenBroker
    private let connectionFactory: any UpstreamConnecting
    private var environment: DeliveryEnvironment
    private var queue: DeliveryQueue
    private var connections: [DeliveryQueue.ConnectionID: any UpstreamConnection] = [:]
    private var pendingActions: [DeliveryAction] = []
    private var performing = false
    private var wakeTimer: TimerID?
    private var wakeAt: Int64 = .max
    private var onDrained: (() -> Void)?
    private let clocks: DeliveryClocks

    /// Prometheus counters (`/metrics`); nil when not wanted (tests, `smarthost test`).
    var metrics: RelayMetrics? {
        didSet {
            tokens.metrics = metrics
            recorder.metrics = metrics
        }
    }

    /// `connections`: makes each connection by its target's transport; nil for the real
    /// `UpstreamConnectionFactory` (tests pass a fake).
    init(loop: EventLoop, spool: Spool, environment: DeliveryEnvironment, logger: Logger,
         clocks: DeliveryClocks = .system, connections: (any UpstreamConnecting)? = nil) {
        self.loop = loop
        self.spool = spool
        self.environment = environment
        self.clocks = clocks
        self.resolver = HostResolver(loop: loop)
        self.tokens = OAuth2TokenBroker(loop: loop, logger: logger)
        self.connectionFactory = connections ?? UpstreamConnectionFactory(loop: loop, resolver: resolver, tokens: tokens)
        self.recorder = DeliveryOutcomeRecorder(loop: loop, spool: spool, logger: logger)
        self.queue = DeliveryQueue(rules: environment.queueRules)
    }

    // MARK: Events in

    func handle(_ event: Event) {
        let now = clocks.now()
        switch event {
        case .queued(let envelope, let content):
            queue.enqueue(envelope, content: content, now: now)
            perform([])
        case .reload(let newEnvironment):
            environment = newEnvironment
            queue.replaceRules(newEnvironment.queueRules)
            perform([])
        case .flush(let id):
            queue.flush(id: id)
            perform([])
        case .read(let cid, let id, let result):
            perform(queue.messageRead(cid, id, result, now: now))
        case .recorder(.recorded):
            recordsOutstanding -= 1
            releaseHeldReads()
        case .recorder(.noticeQueued(let envelope, let content)):
            queue.enqueue(envelope, content: content, now: now)
            perform([])
        case .tick:
            wakeTimer = nil
            wakeAt = .max
            perform(queue.tick(now: now))
        }
    }

    func enqueue(_ envelope: SpoolEnvelope) {
        handle(.queued(envelope, content: nil))
    }

    func enqueue(_ envelope: SpoolEnvelope, content: [UInt8]?) {
        handle(.queued(envelope, content: content))
    }

    func replaceEnvironment(_ newEnvironment: DeliveryEnvironment) {
        handle(.reload(newEnvironment))
    }

    func flush(id: SpoolID? = nil) {
        handle(.flush(id))
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

    // MARK: UpstreamConnectionOwner

    func upstreamConnection(_ connection: any UpstreamConnection, _ event: UpstreamConnectionEvent) {
        let cid = connection.serial
        let now = clocks.now()
        switch event {
        case .ready:
            if let label = queue.hostLabel(of: cid) { metrics?.routeUp(label, up: true) }
            perform(queue.connectionReady(cid, now: now))
        case .finished(let id, let result):
            perform(queue.messageFinished(cid, id, DeliveryAttemptOutcome(result), tls: connection.tlsDescription, now: now))
        case .closed(let failure):
            connections.removeValue(forKey: cid)
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
            open(cid, target)
        case .read(let cid, let envelope, let recipients):
            if recordsOutstanding >= DeliveryOutcomeRecorder.backlogLimit {
                readsHeld.append((cid, envelope, recipients))
            } else {
                read(cid, envelope, recipients: recipients)
            }
        case .send(let cid, let id, let message):
            guard let connection = connections[cid], connection.canSend else {
                return perform(queue.sendRefused(cid, id, now: clocks.now()))
            }
            connection.send(messageID: id, message: message)
        case .quit(let cid):
            connections[cid]?.quit()
        case .record(let record):
            recordsOutstanding += 1
            recorder.record(record, config: environment.config) { [weak self] report in self?.handle(.recorder(report)) }
        case .note(let note):
            recorder.note(note)
        }
    }

    private func open(_ cid: DeliveryQueue.ConnectionID, _ target: UpstreamTarget) {
        let environment = self.environment
        let connection = connectionFactory.connection(
            serial: cid, target: target, tlsContext: { try environment.tlsContext(caFile: target.caFile) }, owner: self)
        let upstream = target.displayName
        connection.onStep = { [weak self] step, seconds in
            self?.metrics?.upstreamStep(step, upstream: upstream, seconds: seconds)
        }
        connections[cid] = connection
        connection.start()
    }

    /// The recorder caught up: the reads held for it go, in order.
    private func releaseHeldReads() {
        while recordsOutstanding < DeliveryOutcomeRecorder.backlogLimit, !readsHeld.isEmpty {
            let (cid, envelope, recipients) = readsHeld.removeFirst()
            read(cid, envelope, recipients: recipients)
        }
    }

    /// Reading and rewriting the message happens on the spool reader; the queue keeps the
    /// connection reserved meanwhile, and the result comes back as an event.
    private func read(_ cid: DeliveryQueue.ConnectionID, _ envelope: SpoolEnvelope, recipients: [String]) {
        let environment = self.environment
        let spool = self.spool
        let loop = self.loop
        let id = envelope.id
        let back = LoopCallback<Result<UpstreamMessage, Error>> { [weak self] result in
            switch result {
            case .success(let message): self?.handle(.read(cid, id, .ready(message)))
            case .failure(let error as SpoolError) where error.isNotFound: self?.handle(.read(cid, id, .notFound))
            case .failure(let error): self?.handle(.read(cid, id, .failed("\(error)")))
            }
        }
        spoolReader.submit {
            let result = Result { () throws -> UpstreamMessage in
                try environment.prepare(envelope, content: spool.readMessage(id), recipients: recipients)
            }
            loop.execute { back.call(result) }
        }
    }

    private func scheduleWake() {
        guard !queue.stopping else { return }
        let now = clocks.now()
        guard let due = queue.nextWake(now: now) else { return }
        if due >= wakeAt, wakeTimer != nil { return }
        loop.cancel(wakeTimer)
        wakeAt = due
        wakeTimer = loop.schedule(afterMilliseconds: max(due - now.monotonic, 0)) { [weak self] in self?.handle(.tick) }
    }

    // MARK: What it knows

    var counters: DeliveryCounters { queue.counters }
    var queuedCount: Int { queue.queuedCount }
    var deferredCount: Int { queue.deferredCount }
    var routesDown: Int { queue.routesDown(now: clocks.monotonic()) }
    var heldCount: Int { queue.awaitingCredentialCount }
    var hasInFlight: Bool { queue.hasInFlight }
    /// Records with the recorder not yet written, and spool reads held back for them.
    var backlog: (records: Int, readsHeld: Int) { (recordsOutstanding, readsHeld.count) }

    /// Routes down now, by the driver's own (monotonic) clock.
    var routesDownNow: [ControlRouteDown] {
        queue.routesDownNow(now: clocks.monotonic())
    }

    var slowedRoutes: [ControlRouteSlowed] {
        queue.slowedRoutes
    }

    /// Seconds since the oldest queued message was received (wall: `receivedAt` is); 0 for
    /// an empty queue.
    func oldestAgeSeconds() -> Int64 {
        let nowSeconds = clocks.wall() / 1000
        return queue.entries.values.map { nowSeconds - $0.envelope.receivedAt }.max().map { max($0, 0) } ?? 0
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

extension DeliveryDriver: ControlQueue {
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
        status.oldestSeconds = Int(oldestAgeSeconds())
        return status
    }

    func setHeld(_ id: SpoolID, _ held: Bool) -> Bool {
        let changed = queue.setHeld(id, held)
        if changed { perform([]) }
        return changed
    }

    var controlRoutesDown: [ControlRouteDown] { routesDownNow }

    var controlRoutesSlowed: [ControlRouteSlowed] { slowedRoutes }
}
