/// The control requests carried out on the spool itself, for when no daemon answers on
/// the control socket. Every change goes through the spool's flocked operations, so this
/// is safe against another `smarthost queue` and against a daemon that starts meanwhile;
/// the daemon picks up the new state when it loads the queue.
///
/// Synchronous and fsyncing: for the command line, never for the event loop.
public struct DirectQueueControl: Sendable {
    public let spool: Spool
    /// Unix seconds; injected for tests.
    let clock: @Sendable () -> Int64

    public init(spool: Spool, clock: @escaping @Sendable () -> Int64 = { WallClock.nowSeconds() }) {
        self.spool = spool
        self.clock = clock
    }

    /// Suffix for every answer, so the operator knows nothing will be sent right now.
    static let notRunning = "(no daemon running: takes effect when it starts)"

    public func perform(_ request: ControlRequest) -> ControlReply {
        do throws(SpoolError) {
            switch request {
            case .status: return .ok(try status().description)
            case .flush(nil): return try flushAll()
            case .flush(let id?): return try makeDue(id, deadLetters: false)
            case .retry(let id): return try makeDue(id, deadLetters: true)
            case .delete(let id):
                try spool.delete(id)
                return .ok("\(id) deleted")
            case .unquarantine(let id):
                switch Self.releaseResult(spool, id) {
                case .success: return .ok("\(id) released from quarantine \(Self.notRunning)")
                case .failure(let answer): return answer
                }
            case .routes:
                return .ok("none")
            case .hold(let id):
                try spool.setHeld(id, true)
                return .ok("\(id) held \(Self.notRunning)")
            case .release(let id):
                try spool.setHeld(id, false)
                return .ok("\(id) released \(Self.notRunning)")
            case .reload:
                return .error("no daemon running: nothing to reload (the configuration is read at start)")
            }
        } catch .notFound(let id) {
            return .notFound("\(id): no such message")
        } catch {
            return .error("\(error)")
        }
    }

    /// Shared with the daemon's service: the words for each way a release can end.
    public static func releaseResult(_ spool: Spool, _ id: SpoolID) -> Result<SpoolEnvelope, ControlReply> {
        do throws(SpoolError) {
            return .success(try spool.releaseQuarantined(id))
        } catch .notFound {
            return .failure(.notFound("\(id): not in quarantine"))
        } catch .corrupt(_, let reason) {
            return .failure(.error("\(id) stays in quarantine: still corrupt: \(reason)"))
        } catch {
            return .failure(.error("\(id): \(error)"))
        }
    }

    /// Counts from the spool alone (pid 0: no daemon; nothing delivered "since start").
    public func status() throws(SpoolError) -> ControlStatus {
        let queued = try spool.list(.queue)
        return ControlStatus(queued: queued.count, deferred: queued.filter { $0.attempts > 0 }.count,
                             deadLetters: try Self.count(spool, .failed))
    }

    /// A dead letter goes back to the queue; a deferred message gets "next attempt: now".
    private func makeDue(_ id: SpoolID, deadLetters: Bool) throws(SpoolError) -> ControlReply {
        let envelope = try spool.envelope(id)
        if envelope.failure != nil {
            guard deadLetters else { return .error("\(id) is a dead letter; use retry") }
            try spool.retryFailed(id)
            return .ok("\(id) moved back to the queue, due now \(Self.notRunning)")
        }
        try dueNow(envelope)
        return .ok("\(id) is due now \(Self.notRunning)")
    }

    private func flushAll() throws(SpoolError) -> ControlReply {
        var count = 0
        for envelope in try spool.list(.queue) where envelope.nextAttemptAt > clock() {
            do throws(SpoolError) {
                try dueNow(envelope)
                count += 1
            } catch .notFound {
                continue  // delivered or deleted meanwhile
            }
        }
        return .ok("\(count) deferred messages are due now \(Self.notRunning)")
    }

    /// Rewrites only the next-attempt time; attempts, last error and done recipients stay.
    private func dueNow(_ envelope: SpoolEnvelope) throws(SpoolError) {
        try spool.markDeferred(envelope.id, attempts: envelope.attempts, nextAttemptAt: 0,
                               lastError: envelope.lastError, doneRecipients: envelope.doneRecipients,
                               refusedRecipients: envelope.refusedRecipients)
    }

    /// How many messages an area holds, from directory names alone (no file is opened).
    public static func count(_ spool: Spool, _ area: SpoolArea) throws(SpoolError) -> Int {
        try Syscall.list(spool.directory(area)).filter { SpoolID($0) != nil }.count
    }
}
