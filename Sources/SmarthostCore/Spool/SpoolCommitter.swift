import Glibc

/// Counters that show group commit at work (and feed `STATUS=` later).
public struct SpoolCommitStatistics: Sendable, Equatable {
    /// Messages made durable and moved into `queue/`.
    public var committed = 0
    /// Commits that failed (their tmp files were removed).
    public var failed = 0
    /// Times the committer woke up and found work.
    public var batches = 0
    /// fsyncs of the `queue/` directory: one per batch that moved a message.
    public var directorySyncs = 0
}

/// The one thread that makes received messages durable, with group commit.
///
/// The event loop must never block on the disk, so `Spool.commit` only enqueues a job
/// here. This thread takes *every* job queued so far as one batch: for each message it
/// writes the tail, fsyncs the file and moves it from `tmp/` to `queue/`; then it fsyncs
/// the `queue/` directory once for the whole batch, and only then runs the completions,
/// which let the session send 250. While one batch waits on the disk the next one
/// gathers, so under load many messages share one directory fsync, the way databases
/// share a log flush; with no load a batch is one message and there is no added delay.
final class SpoolCommitter: @unchecked Sendable {
    struct Job: Sendable {
        var id: SpoolID
        var fd: Int32
        /// Where the message was written: `tmp/<id>` or a reused `spare/<old id>`.
        var writtenPath: String
        var queuePath: String
        var tail: [UInt8]
        /// Cut the file to this length after writing (a reused file was longer).
        var truncateTo: Int?
        var failure: SpoolError?
        var completion: @Sendable (Result<SpoolID, SpoolError>) -> Void
    }

    private let queueDirectory: String
    private let lock = Mutex()
    private var pending: [Job] = []
    private var stopping = false
    private var running = false
    private var thread: SystemThread?
    private var counters = SpoolCommitStatistics()
    private let syncPool = SpoolSyncPool(threads: 8)

    init(queueDirectory: String) {
        self.queueDirectory = queueDirectory
    }

    var statistics: SpoolCommitStatistics {
        lock.withLock { counters }
    }

    /// Queues a job, starting the thread on first use (a CLI that never commits never
    /// starts one). Returns false after `stop()`.
    func submit(_ job: Job) -> Bool {
        lock.withLock {
            guard !stopping else { return false }
            if !running { startThread() }
            pending.append(job)
            lock.broadcast()
            return true
        }
    }

    /// Commits everything already queued, then ends the thread.
    func stop() {
        let (wasRunning, handle) = lock.withLock { () -> (Bool, SystemThread?) in
            stopping = true
            lock.broadcast()
            // Joined once only: shutdown() and deinit both stop, and joining a thread twice
            // is undefined behaviour (ASan aborts on it).
            let wasRunning = running
            running = false
            return (wasRunning, thread)
        }
        guard wasRunning, let handle else { return }
        syncPool.stop()
        if handle.isCurrent {
            // The last reference went away inside a completion: cannot join ourselves.
            handle.detach()
        } else {
            handle.join()
        }
    }

    private func startThread() {
        do {
            thread = try SystemThread.start(name: "spool-commit") { [self] in run() }
        } catch {
            preconditionFailure("cannot start the spool committer thread: \(error)")
        }
        running = true
    }

    private func run() {
        while let batch = nextBatch() {
            let results = commit(batch)
            for (job, result) in zip(batch, results) {
                job.completion(result)
            }
        }
    }

    /// Blocks until there is work; nil once stopped and drained.
    private func nextBatch() -> [Job]? {
        lock.withLock {
            while pending.isEmpty && !stopping { lock.wait() }
            if pending.isEmpty { return nil }
            let batch = pending
            pending = []
            counters.batches += 1
            return batch
        }
    }

    private func commit(_ batch: [Job]) -> [Result<SpoolID, SpoolError>] {
        // The files of a batch are fsynced concurrently: the file system folds fsyncs that
        // arrive together into one journal commit, where one thread syncing them in turn
        // would pay a full disk flush per message.
        var results = syncPool.run(batch.count) { index in
            let job = batch[index]
            do throws(SpoolError) {
                try self.makeDurable(job)
                return .success(job.id)
            } catch {
                return .failure(error)
            }
        }
        let moved = results.indices.filter { if case .success = results[$0] { true } else { false } }
        if !moved.isEmpty {
            do throws(SpoolError) {
                try Syscall.syncDirectory(queueDirectory)
            } catch {
                // Not durable, so not accepted: the client will retry, and a copy left
                // in queue/ would then be delivered twice.
                for index in moved {
                    _ = unlink(batch[index].queuePath)
                    results[index] = .failure(error)
                }
            }
        }
        let succeeded = results.filter { if case .success = $0 { true } else { false } }.count
        lock.withLock {
            counters.committed += succeeded
            counters.failed += results.count - succeeded
            if !moved.isEmpty { counters.directorySyncs += 1 }
        }
        return results
    }

    /// Finishes one file and moves it into the queue; on any failure the tmp file is
    /// removed, so a failed commit leaves nothing half-written behind.
    private func makeDurable(_ job: Job) throws(SpoolError) {
        defer { Syscall.close(job.fd) }
        do throws(SpoolError) {
            if let failure = job.failure { throw failure }
            try Syscall.write(job.fd, job.tail, path: job.writtenPath)
            if let length = job.truncateTo, ftruncate(job.fd, off_t(length)) != 0 {
                throw SpoolError.system("ftruncate", job.writtenPath)
            }
            try Syscall.fdatasync(job.fd, path: job.writtenPath)
            try Syscall.moveNoReplace(job.writtenPath, job.queuePath)
        } catch {
            // If tmp/ refuses the unlink too (unwritable), at least give the space back:
            // recovery removes the empty file at the next start.
            if unlink(job.writtenPath) != 0 { _ = ftruncate(job.fd, 0) }
            throw error
        }
    }
}
