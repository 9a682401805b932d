import Glibc

/// A named thread (`SystemThread`) that runs queued jobs in order, for blocking work the
/// loop must never do itself (getaddrinfo, config files, spool reads). Results go back to
/// the loop with `EventLoop.execute` and a `LoopCallback`.
public final class WorkerThread: @unchecked Sendable {
    private let lock = Mutex()
    private var jobs: [() -> Void] = []
    /// Jobs submitted and not finished yet (queued or running).
    private var unfinished = 0
    private var stopping = false
    private var thread: SystemThread?
    public let name: String

    /// Starts the thread. A process that cannot start one at start-up or reload (thread or
    /// memory limits) stops here with the reason, rather than queueing jobs nobody runs.
    public init(name: String) {
        self.name = name
        do {
            thread = try SystemThread.start(name: name) { [self] in loop() }
        } catch {
            preconditionFailure("cannot start the \(name) thread: \(error)")
        }
    }

    public func submit(_ job: @escaping @Sendable () -> Void) {
        lock.withLock {
            jobs.append(job)
            unfinished += 1
            lock.broadcast()
        }
    }

    /// Blocks the calling thread (never the loop's) until fewer than `limit` jobs are
    /// unfinished here, or the worker stops: lets another worker keep pace with this one.
    public func waitForBacklog(below limit: Int) {
        lock.withLock {
            while unfinished >= limit && !stopping { lock.wait() }
        }
    }

    /// Lets queued jobs finish, then ends the thread.
    /// Idempotent: joining a thread twice is undefined behaviour.
    public func stop() {
        let first = lock.withLock {
            let first = !stopping
            stopping = true
            lock.broadcast()   // the worker, and any thread in waitForBacklog
            return first
        }
        if first { thread?.join() }
    }

    private func loop() {
        while true {
            let batch = lock.withLock { () -> [() -> Void]? in
                while jobs.isEmpty && !stopping { lock.wait() }
                if jobs.isEmpty { return nil }
                defer { jobs.removeAll() }
                return jobs
            }
            guard let batch else { return }
            for job in batch {
                job()
                lock.withLock {
                    unfinished -= 1
                    lock.broadcast()   // for waitForBacklog; the worker's own wait re-checks
                }
            }
        }
    }
}
