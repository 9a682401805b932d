import Glibc

/// Where the daemon's in-memory queue stands on one message.
public enum ControlQueueState: Sendable, Equatable {
    /// Not in the scheduler: a dead letter, gone, or between two states (just committed
    /// and not yet enqueued; just settled and its spool update still pending).
    case unknown
    /// Queued or deferred, no attempt running.
    case waiting
    /// An attempt is running (reading the message, waiting for or talking to an upstream).
    case inFlight
}

/// What the control service needs from the daemon's delivery scheduler. Loop thread only.
public protocol ControlQueue: AnyObject {
    func controlState(of id: SpoolID) -> ControlQueueState
    func enqueue(_ envelope: SpoolEnvelope)
    /// Due now: one message, or all (nil).
    func flush(id: SpoolID?)
    /// Drops a waiting message from memory (never one in flight).
    func forget(id: SpoolID)
    /// Counts the scheduler knows (everything but `deadLetters` and `pid`).
    var controlCounts: ControlStatus { get }
    /// Routes marked down now.
    var controlRoutesDown: [ControlRouteDown] { get }
    /// Routes slowed down by throttling now.
    var controlRoutesSlowed: [ControlRouteSlowed] { get }
    /// Holds or releases a message in memory (never one in flight); false if unknown.
    func setHeld(_ id: SpoolID, _ held: Bool) -> Bool
}

/// The daemon's `ControlHandler`: decides on the loop, with the scheduler's view of each
/// message, and changes the spool on its own worker thread (spool calls fsync).
///
/// The rules that keep a message from being lost or sent twice:
/// - a message in flight is never deleted (`BUSY`), and a retry of it is a no-op;
/// - a waiting message is first forgotten by the scheduler, then deleted, so no attempt
///   can start on it in between (both happen on the loop before the spool call);
/// - a message the scheduler does not know is touched only while it is a dead letter.
///   One still in `queue/` is between two states (its commit or its last outcome is on
///   the way), so the answer is `BUSY` and the client asks again;
/// - every spool change of this service runs on one serial worker, so two requests for
///   one id never interleave; moves between processes are serialised by the spool's flock.
public final class QueueControlService: ControlHandler, @unchecked Sendable {
    // @unchecked: every stored property is either immutable and Sendable or (`queue`)
    // used only on the loop thread; the worker sees only the spool.
    private let loop: EventLoop
    private let spool: Spool
    private let queue: ControlQueue
    private let worker: WorkerThread
    /// When this daemon started (Unix seconds), for `uptime` in STATUS.
    private let startedAt = WallClock.nowSeconds()
    /// The daemon's reload, answering once the new configuration is applied or refused.
    public var onReload: ((@escaping (ControlReply) -> Void) -> Void)?
    /// The daemon's refusing-mail state (spool below `limits.min_free_space`), for STATUS.
    public var storageRefusal: (() -> SpoolFreeSpaceWatch.Refusal?)?

    public init(loop: EventLoop, spool: Spool, queue: ControlQueue) {
        self.loop = loop
        self.spool = spool
        self.queue = queue
        self.worker = WorkerThread(name: "spool-control")
    }

    /// Lets requests already handed to the worker finish; call after closing the server.
    public func shutdown() {
        worker.stop()
    }

    public func handleControl(_ request: ControlRequest, reply: @escaping (ControlReply) -> Void) {
        switch request {
        case .status: status(reply)
        case .flush(nil): flushAll(reply)
        case .flush(let id?): retry(id, deadLetters: false, reply)
        case .retry(let id): retry(id, deadLetters: true, reply)
        case .delete(let id): delete(id, reply)
        case .unquarantine(let id): unquarantine(id, reply)
        case .routes:
            reply(.ok(ControlRouteSlowed.routesReply(down: queue.controlRoutesDown, slowed: queue.controlRoutesSlowed)))
        case .hold(let id): hold(id, true, reply)
        case .release(let id): hold(id, false, reply)
        case .reload:
            guard let onReload else { return reply(.error("reload is not available")) }
            onReload(reply)
        }
    }

    // MARK: verbs

    private func status(_ reply: @escaping (ControlReply) -> Void) {
        var loopCounts = queue.controlCounts
        loopCounts.pid = getpid()
        loopCounts.uptimeSeconds = Int(WallClock.nowSeconds() - startedAt)
        loopCounts.refusingMail = storageRefusal?()
        let counts = loopCounts
        let spool = self.spool
        onWorker({ () -> ControlReply in
            var counts = counts
            counts.deadLetters = (try? DirectQueueControl.count(spool, .failed)) ?? 0
            return .ok(counts.description)
        }, then: reply)
    }

    private func flushAll(_ reply: @escaping (ControlReply) -> Void) {
        let counts = queue.controlCounts
        queue.flush(id: nil)
        reply(.ok("\(counts.queued) queued messages are due now"))
    }

    private func retry(_ id: SpoolID, deadLetters: Bool, _ reply: @escaping (ControlReply) -> Void) {
        switch queue.controlState(of: id) {
        case .inFlight:
            reply(.ok("\(id) is being delivered now"))
        case .waiting:
            queue.flush(id: id)
            reply(.ok("\(id) is due now"))
        case .unknown:
            let spool = self.spool
            onWorker({ Self.reviveDeadLetter(spool, id, allowed: deadLetters) }) { [weak self] outcome in
                self?.finishRetry(id, outcome, reply)
            }
        }
    }

    /// Worker thread: moves a dead letter back and re-reads it for the scheduler.
    private static func reviveDeadLetter(_ spool: Spool, _ id: SpoolID, allowed: Bool) -> Result<SpoolEnvelope, ControlReply> {
        do throws(SpoolError) {
            let envelope = try spool.envelope(id)
            guard envelope.failure != nil else {
                return .failure(.busy("\(id) is changing state; try again"))
            }
            guard allowed else { return .failure(.error("\(id) is a dead letter; use retry")) }
            try spool.retryFailed(id)
            return .success(try spool.envelope(id))
        } catch .notFound {
            return .failure(.notFound("\(id): no such message"))
        } catch {
            return .failure(.error("\(id): \(error)"))
        }
    }

    private func finishRetry(_ id: SpoolID, _ outcome: Result<SpoolEnvelope, ControlReply>, _ reply: (ControlReply) -> Void) {
        switch outcome {
        case .failure(let answer):
            reply(answer)
        case .success(let envelope):
            if queue.controlState(of: id) == .unknown { queue.enqueue(envelope) }
            queue.flush(id: id)
            reply(.ok("\(id) moved back to the queue, due now"))
        }
    }

    /// A quarantined file is unknown to the scheduler; once it is back in `queue/` it is
    /// enqueued like a recovered message.
    private func unquarantine(_ id: SpoolID, _ reply: @escaping (ControlReply) -> Void) {
        let spool = self.spool
        onWorker({ () -> Result<SpoolEnvelope, ControlReply> in
            DirectQueueControl.releaseResult(spool, id)
        }) { [weak self] outcome in
            switch outcome {
            case .failure(let answer): reply(answer)
            case .success(let envelope):
                if let self, self.queue.controlState(of: id) == .unknown { self.queue.enqueue(envelope) }
                self?.queue.flush(id: id)
                reply(.ok("\(id) released from quarantine, due now"))
            }
        }
    }

    /// Hold: the scheduler stops considering the message first (no attempt can start while
    /// the state is written), then the spool records it. Release: the spool first, then the
    /// scheduler makes it due.
    private func hold(_ id: SpoolID, _ held: Bool, _ reply: @escaping (ControlReply) -> Void) {
        let spool = self.spool
        switch queue.controlState(of: id) {
        case .inFlight:
            return reply(.busy("\(id) is being delivered now; try again when the attempt ends"))
        case .unknown:
            return reply(.notFound("\(id): not in the queue (dead letters are not delivered; use retry)"))
        case .waiting:
            if held { _ = queue.setHeld(id, true) }
        }
        onWorker({ () -> Result<Void, SpoolError> in
            Result { () throws(SpoolError) in try spool.setHeld(id, held) }
        }) { [weak self] outcome in
            switch outcome {
            case .success:
                if !held { _ = self?.queue.setHeld(id, false) }
                reply(.ok("\(id) \(held ? "held: kept, not attempted until released" : "released, due now")"))
            case .failure(let error):
                if held { _ = self?.queue.setHeld(id, false) }
                reply(Self.deleteReply(id, .failure(error)))
            }
        }
    }

    private func delete(_ id: SpoolID, _ reply: @escaping (ControlReply) -> Void) {
        let spool = self.spool
        switch queue.controlState(of: id) {
        case .inFlight:
            reply(.busy("\(id) is being delivered now; try again when the attempt ends"))
        case .waiting:
            queue.forget(id: id)
            guard queue.controlState(of: id) == .unknown else {
                return reply(.busy("\(id) is being delivered now; try again"))
            }
            onWorker({ () -> (Result<Void, SpoolError>, SpoolEnvelope?) in
                let outcome = Result { () throws(SpoolError) in try spool.delete(id) }
                // Still there after a failed delete: it goes back to the scheduler.
                let back = (try? outcome.get()) == nil ? try? spool.envelope(id) : nil
                return (outcome, back)
            }) { [weak self] result in
                let (outcome, back) = result
                if let back, let self, self.queue.controlState(of: id) == .unknown { self.queue.enqueue(back) }
                reply(Self.deleteReply(id, outcome))
            }
        case .unknown:
            onWorker({ () -> ControlReply in
                do throws(SpoolError) {
                    guard try spool.envelope(id).failure != nil else {
                        return .busy("\(id) is changing state; try again")
                    }
                } catch {
                    return Self.deleteReply(id, .failure(error))
                }
                return Self.deleteReply(id, Result { () throws(SpoolError) in try spool.delete(id) })
            }, then: reply)
        }
    }

    static func deleteReply(_ id: SpoolID, _ outcome: Result<Void, SpoolError>) -> ControlReply {
        switch outcome {
        case .success: return .ok("\(id) deleted")
        case .failure(.notFound): return .notFound("\(id): no such message")
        case .failure(let error): return .error("\(id): \(error)")
        }
    }

    /// Runs `body` on the worker, then `then` with its result back on the loop.
    private func onWorker<T: Sendable>(_ body: @escaping @Sendable () -> T, then: @escaping (T) -> Void) {
        let back = LoopCallback(then)
        worker.submit { [loop] in
            let value = body()
            loop.execute { back.call(value) }
        }
    }
}
