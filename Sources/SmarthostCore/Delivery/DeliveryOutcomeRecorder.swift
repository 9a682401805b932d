import Logging

/// The I/O of the delivery queue's decisions: log lines, metrics, spool updates (on their
/// own thread, in order, retried until they land) and notices. The queue decides; this
/// records. Loop thread, except the jobs it gives its worker.
///
/// It knows nothing of the driver: what comes of a record (a notice committed, the record
/// written) goes back as a `Report` to the continuation the driver passed with it, on the
/// loop, and the configuration a notice follows comes with each record, so a reload needs
/// nothing of it.
final class DeliveryOutcomeRecorder {
    /// What came of a record, for the driver's event path.
    enum Report {
        /// Its spool updates ran (landed, or will be retried): one fewer outstanding.
        case recorded
        /// A notice (failure report or delay warning) is durable: queue it for delivery.
        case noticeQueued(SpoolEnvelope, content: [UInt8])
    }

    /// First wait before a failed spool update is tried again; doubles up to a minute.
    static let spoolRetryMilliseconds: Int64 = 1_000
    /// Records outstanding before the driver holds back spool reads: a delivery not yet
    /// recorded is sent again after a crash, so this bounds those duplicates.
    static let backlogLimit = 256

    private let loop: EventLoop
    private let spool: Spool
    private let logger: Logger
    /// Records outcomes (delivered, deferred, failed) in order, one message's after another.
    private let worker = WorkerThread(name: "spool-record")
    var metrics: RelayMetrics?
    private var stopping = false

    init(loop: EventLoop, spool: Spool, logger: Logger) {
        self.loop = loop
        self.spool = spool
        self.logger = logger
    }

    func stop() {
        stopping = true
        worker.stop()
    }

    // MARK: Outcomes

    /// Logs, counts and writes one outcome; `config` is the one the outcome was decided
    /// under (its notices follow it). `report` hears `.recorded` once its spool updates
    /// have run, after any `.noticeQueued`.
    func record(_ record: DeliveryRecord, config: RelayConfig, report: @escaping (Report) -> Void) {
        let reports = LoopCallback(report)
        log(record)
        write(record, config: config, reports: reports)
        let loop = self.loop
        worker.submit { loop.execute { reports.call(.recorded) } }
    }

    private func log(_ record: DeliveryRecord) {
        let envelope = record.envelope
        let id = envelope.id
        let now = record.atMilliseconds
        let decision = record.decision
        var meta: Logger.Metadata = [
            "id": "\(id)", "org": "\(envelope.org ?? "-")", "layer": "\(envelope.layer ?? "-")",
            "route": "\(record.route)", "attempts": "\(envelope.attempts)",
            "delay": "\(DeliveryPolicy.humanDuration(now - envelope.receivedAt * 1000))",
        ]
        if record.host != record.route { meta["host"] = "\(record.host)" }
        if let tls = record.tls { meta["tls"] = "\(tls)" }
        if let reply = record.dataReply { meta["reply"] = "\(reply.description)" }
        let labels = RelayMetrics.MessageLabels(org: envelope.org, layer: envelope.layer)
        switch record.kind {
        case .delivered:
            metrics?.delivered(labels, bytes: envelope.size, latencySeconds: Double(now - envelope.receivedAt * 1000) / 1000)
            logger.info("delivered", metadata: meta.merging(["to": "\(decision.delivered.joined(separator: ","))"]) { $1 })
        case .progressed:
            meta["to"] = "\(decision.delivered.joined(separator: ","))"
            if !decision.refused.isEmpty { meta["refused"] = "\(decision.refused.keys.sorted().joined(separator: ","))" }
            meta["remaining"] = "\(envelope.pendingRecipients.count)"
            logger.info("delivered", metadata: meta)
        case .deferred(let at):
            metrics?.deferred(labels)
            meta["reason"] = "\(decision.reason)"
            meta["retry_in"] = "\((at - now) / 1000)s"
            if decision.possibleDuplicate { meta["possible_duplicate"] = "yes" }
            if decision.throttled { meta["throttled"] = "yes" }
            logger.warning("deferred", metadata: meta)
        case .failed:
            metrics?.failed(labels)
            meta["reason"] = "\(decision.reason)"
            logger.error("failed", metadata: meta)
        }
    }

    private func write(_ record: DeliveryRecord, config: RelayConfig, reports: LoopCallback<Report>) {
        let envelope = record.envelope
        let id = envelope.id
        let decision = record.decision
        switch record.kind {
        case .delivered:
            spoolAction("markDelivered", id) { try $0.markDelivered(id) }
        case .progressed:
            // Progress is written so a restart does not send these recipients again.
            spoolAction("markProgress", id) {
                try $0.markDeferred(id, attempts: envelope.attempts, nextAttemptAt: envelope.nextAttemptAt,
                                    lastError: envelope.lastError, doneRecipients: envelope.doneRecipients,
                                    refusedRecipients: envelope.refusedRecipients)
            }
        case .deferred(let at):
            if record.warnDelay {
                warnDelay(envelope, reason: decision.reason, host: record.remoteHost, config: config, reports: reports)
            }
            spoolAction("markDeferred", id) {
                try $0.markDeferred(id, attempts: envelope.attempts, nextAttemptAt: at / 1000,
                                    lastError: decision.reason, doneRecipients: envelope.doneRecipients,
                                    refusedRecipients: envelope.refusedRecipients)
            }
        case .failed:
            deadLetter(envelope, reason: decision.reason, host: record.remoteHost, config: config, reports: reports)
        }
    }

    // MARK: Route changes

    func note(_ note: DeliveryNote) {
        switch note {
        case .routeDown(let route, let error, let retryIn, let first):
            metrics?.routeUp(route, up: false)
            if first {
                logger.warning("route down", metadata: ["route": "\(route)", "error": "\(error)", "retry_in": "\(retryIn / 1000)s"])
            } else {
                logger.debug("route still down", metadata: ["route": "\(route)", "error": "\(error)"])
            }
        case .routeUp(let route, let downFor):
            metrics?.routeUp(route, up: true)
            logger.info("route up", metadata: ["route": "\(route)", "down_for": "\(DeliveryPolicy.humanDuration(downFor))"])
        case .hostDown(let route, let host, let error, let retryIn):
            metrics?.routeUp(host, up: false)
            logger.warning("upstream host down, trying the next", metadata: [
                "route": "\(route)", "host": "\(host)", "error": "\(error)", "retry_in": "\(retryIn / 1000)s",
            ])
        case .hostUp(let route, let host, let downFor):
            metrics?.routeUp(host, up: true)
            logger.info("upstream host up", metadata: ["route": "\(route)", "host": "\(host)",
                                                       "down_for": "\(DeliveryPolicy.humanDuration(downFor))"])
        case .held(let route, let reason):
            logger.error("route has no credentials: holding its mail", metadata: ["upstream": "\(route)", "reason": "\(reason)"])
        case .pace(let route, let change, let reply):
            metrics?.routePace(route, messagesPerSecond: change.messagesPerSecond, connections: change.connections, slower: change.slower)
            var meta: Logger.Metadata = ["route": "\(route)", "rate": "\(RoutePace.describe(change.messagesPerSecond))",
                                         "connections": "\(change.connections)"]
            if let reply { meta["reply"] = "\(reply)" }
            if change.slower {
                logger.warning("route throttled: slowing down", metadata: meta)
            } else {
                logger.info("route pace up", metadata: meta)
            }
        }
    }

    // MARK: Notices

    /// The failure notice is committed (fsynced, in `queue/`) before the dead letter moves
    /// to `failed/`, in one spool action retried until both landed: a crash between the two
    /// leaves the original in `queue/`, so the next start fails it again and sends the
    /// notice again (a duplicate at worst, never none); a notice that cannot be written
    /// (the disk below even the notice reserve, `Spool.noticeFloorBytes`) keeps the
    /// original in `queue/` too, the way Postfix's qmgr defers a message whose bounce
    /// could not be written.
    private func deadLetter(_ envelope: SpoolEnvelope, reason: String, host: String, config: RelayConfig,
                            reports: LoopCallback<Report>) {
        let id = envelope.id
        let notice = noticeCommit(.failure, for: envelope, reason: reason, host: host, config: config, reports: reports)
        let progress = NoticeProgress()
        spoolAction("moveToFailed", id) { spool in
            if let notice, !progress.committed {
                try notice(spool)
                progress.committed = true   // a retry of the move must not send it again
            }
            try spool.moveToFailed(id, reason: reason, progress: envelope)
        }
    }

    /// The delay warning, then its mark: a crash in between warns twice, never not at all.
    private func warnDelay(_ envelope: SpoolEnvelope, reason: String, host: String, config: RelayConfig,
                           reports: LoopCallback<Report>) {
        guard let notice = noticeCommit(.delay, for: envelope, reason: reason, host: host, config: config,
                                        reports: reports) else { return }
        let id = envelope.id
        let progress = NoticeProgress()
        spoolAction("queueNotice", id) { spool in
            if !progress.committed {
                try notice(spool)
                progress.committed = true
            }
            try? spool.markDelayWarned(id)
        }
    }

    /// Makes and commits a failure notice or delay warning (`NoticePlan` decides whether
    /// and to whom) on the recorder thread, in order with the message's own updates, then
    /// hands it to the loop to be delivered like any queued message. nil when nobody is to
    /// be told.
    private func noticeCommit(_ kind: DeliveryStatusNotice.Kind, for envelope: SpoolEnvelope, reason: String,
                              host: String, config: RelayConfig,
                              reports: LoopCallback<Report>) -> (@Sendable (Spool) throws -> Void)? {
        guard !NoticePlan.recipients(for: envelope, config: config).isEmpty else { return nil }
        let queued = LoopCallback<(SpoolEnvelope, [UInt8])> { [weak self] notice in
            self?.logger.info("notice queued", metadata: [
                "id": "\(notice.0.id)", "about": "\(envelope.id)", "kind": "\(kind == .failure ? "failure" : "delay")",
                "to": "\(notice.0.recipients.joined(separator: ","))", "org": "\(notice.0.org ?? "-")",
                "size": "\(notice.1.count)",
            ])
            reports.call(.noticeQueued(notice.0, content: notice.1))
        }
        let loop = self.loop
        return { spool in
            let content = try? spool.readMessage(envelope.id)
            let token = String(UInt64.random(in: .min ... .max), radix: 36)
            let now = Int(WallClock.nowSeconds())
            let plan = kind == .failure
                ? NoticePlan.failure(for: envelope, reason: reason, remoteMTA: host, config: config,
                                     content: content, nowUnixSeconds: now, token: token)
                : NoticePlan.delay(for: envelope, reason: reason, remoteMTA: host, config: config,
                                   content: content, nowUnixSeconds: now, token: token)
            guard let plan else { return }
            let committed = try NoticeSpooler.commit(plan, resolvedFrom: envelope, config: config, spool: spool)
            loop.execute { queued.call(committed) }
        }
    }

    // MARK: Spool updates

    /// Spool updates fsync: they run on the recorder thread, in order, never on the loop.
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
        worker.submit {
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

/// Whether a spool action's notice is committed already. Only the recorder's worker
/// thread touches it (an action and its retries run there, one after another).
private final class NoticeProgress: @unchecked Sendable {
    var committed = false
}
