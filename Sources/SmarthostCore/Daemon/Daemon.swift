import Glibc
import Logging

/// The relay process: owns the loop, the spool, the inbound server and the systemd
/// conversation. `run` returns the process exit status.
public final class Daemon {
    private let loop: EventLoop
    private let logger: Logger
    private let notifier = SystemdNotifier()
    /// Held for the life of the process: one relay per spool.
    private let spoolLock: SpoolLock
    private let spool: Spool
    private let server: InboundServer
    private let scheduler: DeliveryDriver
    private let configPath: String
    private var config: RelayConfig
    private var socketActivated = false
    private var finished = false
    private var control: ControlServer?
    private var controlService: QueueControlService?
    private var lastStatus = ""
    private var exitStatus: Int32 = 0
    private var stopDeadline: TimerID?
    /// A graceful stop ends when both are true (or its grace is over).
    private var sessionsDrained = false
    private var deliveriesDrained = false
    private var statusTimer: TimerID?
    private let metrics = RelayMetrics()
    private var metricsServer: MetricsServer?
    /// Takes in what sendmail left in `<spool>/maildrop` while the relay could not take it.
    private var maildrop: MaildropPickup?
    private let startedAt = WallClock.nowSeconds()
    /// Below `limits.min_free_space` every message is refused: said once, shown while it lasts.
    private var freeSpace = SpoolFreeSpaceWatch()

    /// Reads again the messages recovery could not read (spool I/O never runs on the loop).
    private let recoveryWorker = WorkerThread(name: "spool-recover")
    /// Reads and parses the configuration at reload (files, includes, secrets, CA bundles):
    /// the loop only applies the result. One thread, so reloads are applied in order.
    private let configWorker = WorkerThread(name: "config-reload")
    static let unreadableRetryMilliseconds: Int64 = 30_000

    /// How long a graceful stop waits for sessions in flight before closing them.
    static let stopGraceMilliseconds: Int64 = 20_000

    public static func run(config: RelayConfig, configPath: String) -> Int32 {
        // First, before any thread exists (the log writer is the first): every thread
        // inherits the mask, and the loop's signalfd alone takes HUP, INT and TERM.
        ProcessSignals.blockInThisThread()
        signal(SIGPIPE, SIG_IGN)
        LoggingBootstrap.once()
        let logger = Logger(label: "smarthost")
        // Records are written by the log sink's thread: the last ones must be out before exit.
        defer { LogSink.standardError.flush() }
        do {
            let daemon = try Daemon(config: config, configPath: configPath, logger: logger)
            return daemon.serve()
        } catch let failure as SpoolLock.Failure {
            logger.critical("cannot start: \(failure)", metadata: ["error": "\(failure)"])
            return 1
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            return 1
        }
    }

    private init(config: RelayConfig, configPath: String, logger: Logger) throws {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        loop = try EventLoop()
        // Blocked already (`run`); the handler is looked up at delivery time, once `self`
        // exists. SIGUSR2 is in the set only under SMARTHOST_TEST_HOOKS=1 (WatchdogTestHook).
        let signals = SignalRelay()
        try loop.handleSignals(ProcessSignals.relayed) { signals.target?($0) }
        // Before anything touches the spool: a second relay must change nothing (no
        // recovery, no files made ahead, no control socket) and say who holds it.
        spoolLock = try SpoolLock.acquire(spool: config.spool)
        spool = try Spool(root: config.spool, minimumFreeBytes: UInt64(max(config.limits.minFreeSpace, 0)), preallocatedFiles: 32)
        let context = InboundContext(loop: loop, spool: spool, config: config, logger: logger)
        server = InboundServer(loop: loop, context: context, logger: logger)
        scheduler = DeliveryDriver(loop: loop, spool: spool, environment: DeliveryEnvironment(config: config), logger: logger)
        server.onAccepted = { [unowned scheduler] envelope, content in scheduler.enqueue(envelope, content: content) }
        metrics.prepare(config)
        context.metrics = metrics
        scheduler.metrics = metrics
        signals.target = { [unowned self] signal in self.received(signal: signal) }
    }

    private func serve() -> Int32 {
        do {
            // The control socket opens before recovery, so a queue command never bypasses a
            // daemon that is still starting (it gets "busy" until the queue is loaded).
            let service = QueueControlService(loop: loop, spool: spool, queue: scheduler)
            service.storageRefusal = { [unowned self] in self.freeSpace.refusing }
            service.onReload = { [unowned self] reply in self.reload(reply) }
            controlService = service
            control = try ControlServer(loop: loop, path: ControlServer.socketPath(spool: config.spool), handler: service)
            try recoverSpool()
            try server.listen(on: try listeningSockets())
            try startMetrics(config.metricsListen)
            maildrop = MaildropPickup(loop: loop, spool: spool, config: config, logger: logger, metrics: metrics) {
                [unowned scheduler] envelope, content in scheduler.enqueue(envelope, content: content)
            }
            try maildrop?.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            return 1
        }
        checkFreeSpace()
        notifier.ready(status: statusLine())
        logMissingCredentials(config)
        warnUIDRulesBlind(config)
        for warning in config.warnings { logger.warning("configuration: \(warning)") }
        startWatchdog()
        startStatusUpdates()
        logger.info("started", metadata: ["hostname": "\(config.hostname)", "spool": "\(config.spool)"])
        loop.run()
        logger.info("stopped")
        return exitStatus
    }

    private func recoverSpool() throws {
        let recovery = try spool.recover()
        for item in recovery.quarantined {
            logger.error("spool file quarantined", metadata: ["file": "\(item.name)", "reason": "\(item.reason)"])
        }
        for envelope in recovery.queued { scheduler.enqueue(envelope) }
        logger.info("spool recovered", metadata: ["queued": "\(recovery.queued.count)", "quarantined": "\(recovery.quarantined.count)"])
        retryUnreadable(recovery.unreadable.map(\.name), reasons: recovery.unreadable.map(\.reason))
    }

    /// Messages recovery could not read (a root-owned file left by hand, an I/O error) are
    /// not corrupt: they stay queued, are reported loudly, and are read again every
    /// `unreadableRetryMilliseconds` until they can be delivered.
    private func retryUnreadable(_ names: [String], reasons: [String]) {
        guard !names.isEmpty else { return }
        for (name, reason) in zip(names, reasons) {
            logger.critical("queued message unreadable: kept in the queue, will be read again",
                            metadata: ["file": "\(name)", "reason": "\(reason)"])
        }
        let spool = self.spool
        let back = LoopCallback<[(String, Result<SpoolEnvelope, SpoolError>)]> { [weak self] results in
            guard let self, !self.finished else { return }
            var still: [String] = [], why: [String] = []
            for (name, result) in results {
                switch result {
                case .success(let envelope):
                    self.logger.info("queued message readable again", metadata: ["id": "\(envelope.id)"])
                    self.scheduler.enqueue(envelope)
                case .failure(let error) where Spool.isContentFault(error):
                    self.logger.error("queued message is corrupt: left in queue/ for a human", metadata: ["file": "\(name)", "reason": "\(error)"])
                case .failure(let error):
                    still.append(name)
                    why.append("\(error)")
                }
            }
            self.retryUnreadable(still, reasons: why)
        }
        _ = loop.schedule(afterMilliseconds: Self.unreadableRetryMilliseconds) { [weak self] in
            guard let self, !self.finished else { return }
            self.recoveryWorker.submit { [loop = self.loop] in
                let results = names.map { name in
                    (name, Result { () throws(SpoolError) in try spool.revalidate(name) })
                }
                loop.execute { back.call(results) }
            }
        }
    }

    /// Sockets passed by systemd socket activation win over `listen:`.
    private func listeningSockets() throws -> [ListeningSocket] {
        let passed = notifier.listenFDs()
        if !passed.isEmpty {
            socketActivated = true
            logger.info("socket activation", metadata: ["fds": "\(passed.count)"])
            return try passed.map { fd throws(SystemError) in try ListeningSocket.adopt(fd: fd) }
        }
        return try config.listen.map { listen throws in try Self.bind(listen) }
    }

    static func bind(_ listen: ListenAddress) throws -> ListeningSocket {
        if let path = listen.unixPath { return try UnixListener.bind(path: path) }
        guard let address = SocketAddress(ip: listen.host, port: listen.port) else {
            throw SystemError("listen address \(listen.host)", errno: EINVAL)
        }
        return try ListeningSocket.bind(address)
    }

    private func received(signal: Int32) {
        switch signal {
        case SIGHUP:
            reload { _ in }
        case SIGUSR2:
            // Only registered under SMARTHOST_TEST_HOOKS=1.
            WatchdogTestHook.stall(logger: logger)
        default:
            beginStop()
        }
    }

    /// SIGTERM, SIGINT: `STOPPING=1`, no new connections or transactions, then exit 0 once
    /// the inbound sessions have ended and every message with an upstream has its answer
    /// (recorded, so it is not sent again at the next start), or when the grace is over.
    private func beginStop() {
        guard !server.stopping else { return }
        logger.info("stopping: draining sessions", metadata: ["deliveries_in_flight": "\(scheduler.inFlightCount)"])
        notifier.stopping()
        scheduler.stop { [unowned self] in
            self.deliveriesDrained = true
            self.finishStopWhenDrained()
        }
        server.onIdleAfterStop = { [unowned self] in
            self.sessionsDrained = true
            self.finishStopWhenDrained()
        }
        stopDeadline = loop.schedule(afterMilliseconds: Self.stopGraceMilliseconds) { [unowned self] in
            self.logger.warning("stop grace period over: closing remaining sessions and deliveries",
                                metadata: ["deliveries_in_flight": "\(self.scheduler.inFlightCount)"])
            self.server.forceCloseAll()
            self.finishStop()
        }
        server.beginStop()
    }

    private func finishStopWhenDrained() {
        guard sessionsDrained, deliveriesDrained else { return }
        finishStop()
    }

    /// Deliveries still in flight when the grace is over are abandoned safely: they stay
    /// queued (delivery state is only written after the upstream answered) and are retried
    /// at the next start.
    private func finishStop() {
        // Reached from the last session or delivery ending, from the grace timer, or both: once only.
        guard !finished else { return }
        finished = true
        loop.cancel(stopDeadline)
        // Closed last: from now on the queue tools work on the spool directly, under its locks.
        control?.close()
        metricsServer?.close()
        controlService?.shutdown()
        maildrop?.stop()
        recoveryWorker.stop()
        configWorker.stop()
        // Writes the outcomes still queued (a delivery that just finished) before returning.
        scheduler.shutdown()
        spool.shutdown()
        loop.stop()
    }

    // MARK: reload

    /// SIGHUP: the new configuration is read and validated whole on `configWorker`, then
    /// swapped in at once on the loop; new connections and every later delivery attempt use
    /// it, sessions in flight finish on the old one. An invalid file changes nothing.
    /// `reply` runs on the loop once the result is applied.
    private func reload(_ reply: @escaping (ControlReply) -> Void) {
        notifier.reloading()
        logger.info("reloading", metadata: ["config": "\(configPath)"])
        let path = configPath, environment = ProcessEnvironment.current()
        let apply = LoopCallback<Result<RelayConfig, ConfigErrors>> { [weak self] result in
            guard let self, !self.finished else { return }
            reply(self.applyReload(result))
            self.notifier.ready(status: self.statusLine())
        }
        configWorker.submit { [loop] in
            let result = Result { () throws(ConfigErrors) in try RelayConfig.load(path: path, environment: environment) }
            loop.execute { apply.call(result) }
        }
    }

    private func applyReload(_ result: Result<RelayConfig, ConfigErrors>) -> ControlReply {
        let newConfig: RelayConfig
        switch result {
        case .success(let loaded):
            newConfig = loaded
        case .failure(let error):
            for issue in error.issues {
                logger.error("reload refused: configuration error, keeping the running one", metadata: ["error": "\(issue)"])
            }
            return .error("reload refused, the running configuration stays: \(configPath): "
                + error.issues.map(\.description).joined(separator: "; "))
        }
        if newConfig.spool != config.spool {
            logger.warning("spool path change ignored until restart", metadata: ["spool": "\(config.spool)"])
        }
        spool.minimumFreeBytes = UInt64(max(newConfig.limits.minFreeSpace, 0))
        let context = InboundContext(loop: loop, spool: spool, config: newConfig, logger: logger)
        context.metrics = metrics
        metrics.prepare(newConfig)
        server.replaceContext(context)
        if newConfig.metricsListen != config.metricsListen {
            metricsServer?.close()
            metricsServer = nil
            do { try startMetrics(newConfig.metricsListen) } catch {
                logger.error("cannot serve metrics", metadata: ["address": "\(newConfig.metricsListen.map(\.description) ?? "-")", "error": "\(error)"])
            }
        }
        if !socketActivated { updateListeners(newConfig.listen) }
        scheduler.replaceEnvironment(DeliveryEnvironment(config: newConfig))
        maildrop?.use(newConfig)
        config = newConfig
        logMissingCredentials(newConfig)
        warnUIDRulesBlind(newConfig)
        for warning in newConfig.warnings { logger.warning("configuration: \(warning)") }
        logger.info("reloaded", metadata: ["orgs": "\(newConfig.orgs.count)"])
        checkFreeSpace()
        let missing = newConfig.missingCredentials.map(\.route)
        return .ok("reloaded \(configPath): \(newConfig.orgs.count) orgs"
            + (missing.isEmpty ? "" : "; credentials missing for " + missing.joined(separator: ", ")))
    }

    /// `/metrics` on `metrics.listen`; the queue and spool gauges are read at each scrape.
    private func startMetrics(_ listen: ListenAddress?) throws {
        guard let listen else { return }
        let server = try MetricsServer(loop: loop, logger: logger, metrics: metrics, socket: try Self.bind(listen))
        server.refresh = { [unowned self] in
            let now = WallClock.nowSeconds()
            let known = RelayMetrics.labels(of: self.config)
            self.metrics.setQueue(self.scheduler.queueByLabels(nowSeconds: now), known: known)
            self.metrics.setGauge("smarthost_uptime_seconds", now - self.startedAt, help: "Seconds since the relay started")
            self.metrics.setGauge("smarthost_routes_down", Int64(self.scheduler.routesDown), help: "Routes marked down now")
            self.metrics.setGauge("smarthost_messages_held", Int64(self.scheduler.heldCount),
                                  help: "Messages held because their route's secret is missing")
            if let free = try? Syscall.freeBytes(self.spool.root) {
                self.metrics.setGauge("smarthost_spool_free_bytes", Int64(clamping: free), help: "Free bytes in the spool's file system")
            }
            self.checkFreeSpace()
        }
        metricsServer = server
        logger.info("metrics listening", metadata: ["address": "\(server.address.map { "\($0)" } ?? "\(listen)")"])
    }

    /// `uid:`/`user:` rules in a user namespace that maps few uids (systemd's
    /// `PrivateUsers=yes`): other users' clients arrive as uid=unknown and match none of them.
    private func warnUIDRulesBlind(_ config: RelayConfig) {
        let map = PeerUIDMap.current
        guard !map.mapsEveryUID else { return }
        let orgs = config.orgs.filter { org in
            org.clients?.contains { if case .uid = $0 { return true } else { return false } } ?? false
        }.map(\.id)
        guard !orgs.isEmpty else { return }
        logger.warning("""
            uid rules cannot see most users: this process's user namespace maps only some uids \
            (systemd PrivateUsers=yes?), other Unix-socket clients are uid=unknown; set PrivateUsers=no
            """, metadata: ["orgs": "\(orgs.joined(separator: ","))"])
    }

    /// A fresh install: the relay runs and takes mail, and says exactly what it waits for.
    private func logMissingCredentials(_ config: RelayConfig) {
        for (route, problem) in config.missingCredentials {
            logger.error("credentials missing: \(route) route holds its mail until they are provided",
                         metadata: ["route": "\(route)", "reason": "\(problem)"])
        }
    }

    private func updateListeners(_ wanted: [ListenAddress]) {
        let current = Set(server.listeningAddresses.map(\.description))
        let wantedNames = Set(wanted.map(\.description))
        for address in server.listeningAddresses where !wantedNames.contains(address.description) {
            // Port 0 listeners report their real port; keep them while "…:0" is still configured.
            if wanted.contains(where: { $0.port == 0 && $0.host == address.ipString }) { continue }
            server.stopListening(on: address)
        }
        for listen in wanted where !current.contains(listen.description) && (listen.port != 0 || listen.unixPath != nil) {
            do {
                try server.listen(on: [Self.bind(listen)])
            } catch {
                logger.error("cannot listen", metadata: ["address": "\(listen)", "error": "\(error)"])
            }
        }
    }

    // MARK: status and watchdog

    /// `STATUS=` at most once a second, and only when it changed.
    private func startStatusUpdates() {
        statusTimer = loop.schedule(afterMilliseconds: 1000) { [weak self] in
            guard let self, !self.server.stopping else { return }
            self.checkFreeSpace()
            let line = self.statusLine()
            if line != self.lastStatus {
                self.lastStatus = line
                self.notifier.status(line)
            }
            self.startStatusUpdates()
        }
    }

    /// One statvfs (at start, each second, at each scrape and reload): logs entering and
    /// leaving the refusing state once each, and keeps `smarthost_refusing_mail` current.
    private func checkFreeSpace() {
        guard let free = try? spool.freeBytes() else { return }
        let floor = spool.minimumFreeBytes
        switch freeSpace.observe(freeBytes: free, floorBytes: floor) {
        case .entered(let refusal)?:
            logger.warning("\(refusal): every message gets 452 4.3.1 until there is room",
                           metadata: ["free": "\(free)", "min_free_space": "\(floor)", "spool": "\(spool.root)"])
        case .left(let reading)?:
            let free = SpoolFreeSpaceWatch.Refusal.size(reading.freeBytes), floor = SpoolFreeSpaceWatch.Refusal.size(reading.floorBytes)
            logger.warning("accepting mail again: spool free \(free) >= min_free_space \(floor)",
                           metadata: ["free": "\(reading.freeBytes)", "min_free_space": "\(reading.floorBytes)", "spool": "\(spool.root)"])
        case nil:
            break
        }
        metrics.registry.set("smarthost_refusing_mail",
                             help: "1 while every message is refused (452 4.3.1), with the reason; 0 otherwise",
                             labels: [("reason", "min_free_space")], freeSpace.refusing == nil ? 0 : 1)
    }

    private func startWatchdog() {
        guard let usec = notifier.watchdogIntervalMicroseconds() else { return }
        let interval = max(Int64(usec / 2000), 1)
        func ping() {
            notifier.watchdog()
            loop.schedule(afterMilliseconds: interval) { ping() }
        }
        ping()
    }

    private func statusLine() -> String {
        let counters = scheduler.counters
        let missing = config.missingCredentials
        let waiting = missing.isEmpty ? "" : "credentials missing for " + missing.map(\.route).joined(separator: ", ")
            + " (see /etc/smarthost/credentials/; mail held=\(scheduler.heldCount)); "
        let down = scheduler.routesDownNow
        let oldest = scheduler.oldestAgeSeconds()
        let slowed = scheduler.slowedRoutes
        let refusing = freeSpace.refusing.map { "\($0) (452 4.3.1 to every message); " } ?? ""
        return refusing + waiting + "queue=\(scheduler.queuedCount) deferred=\(scheduler.deferredCount) failed=\(counters.failed) "
            + "delivered=\(counters.delivered) rejected=\(server.rejectedCount) routes_down=\(down.count)"
            + (down.isEmpty ? "" : " (" + down.map(\.label).joined(separator: ", ") + ")")
            + (slowed.isEmpty ? "" : " routes_slowed=\(slowed.count) (" + slowed.map { "\($0.route) \($0.pace)" }.joined(separator: "; ") + ")")
            + (oldest > 0 ? " oldest=\(QueueReport.duration(oldest))" : "")
    }
}

/// Lets the signal handler be registered before the daemon object is complete.
private final class SignalRelay {
    var target: ((Int32) -> Void)?
}

enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false

    static func once() {
        guard !done else { return }
        done = true
        // journald with structured fields when fd 2 is the journal's stream.
        let destination = LogDestination.current()
        LoggingSystem.bootstrap { label -> any LogHandler in
            switch destination {
            case .journald: return JournaldLogHandler(label: label)
            case .lines: return LineLogHandler(label: label)
            }
        }
    }
}
