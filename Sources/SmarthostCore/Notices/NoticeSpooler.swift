/// Puts a notice into the spool like any accepted message — `tmp/`, fsync, rename into
/// `queue/`, fsync the directory (the group committer) — so it is as durable as accepted
/// mail, retried and visible in the queue tools. It may use the room below
/// `min_free_space` (`Spool.beginNotice`). Runs on a spool worker thread (it waits for the
/// committer), never on the loop.
enum NoticeSpooler {
    /// The committed notice: its envelope (null sender, the original's org and route) and
    /// content, for the delivery scheduler.
    static func commit(_ plan: NoticePlan, resolvedFrom original: SpoolEnvelope, config: RelayConfig,
                       spool: Spool) throws -> (SpoolEnvelope, [UInt8]) {
        let content = plan.notice.bytes
        let incoming = try spool.beginNotice(expectedSize: content.count)
        incoming.append(content)
        var envelope = SpoolEnvelope(
            id: incoming.id, receivedAt: WallClock.nowSeconds(), sender: "", recipients: plan.recipients,
            org: plan.org, layer: original.layer, route: original.route,
            heloName: config.hostname, clientAddress: "127.0.0.1", size: content.count)
        envelope.nextAttemptAt = 0
        let done = CommitWait()
        spool.commit(incoming, envelope: envelope) { done.finish($0) }
        envelope.id = try done.wait().get()
        return (envelope, content)
    }
}

/// The committer's answer, waited for on the worker thread.
private final class CommitWait: @unchecked Sendable {
    private let lock = Mutex()
    private var result: Result<SpoolID, SpoolError>?

    func finish(_ result: Result<SpoolID, SpoolError>) {
        lock.withLock {
            self.result = result
            lock.broadcast()
        }
    }

    func wait() -> Result<SpoolID, SpoolError> {
        lock.withLock {
            while result == nil { lock.wait() }
            return result!
        }
    }
}
