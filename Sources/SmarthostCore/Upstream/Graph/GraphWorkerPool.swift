/// The threads Graph requests block on (libcurl is blocking; the loop never is). One pool
/// per process, shared by every Graph connection and event loop: a request goes to an idle
/// thread, and a new thread is started only when every one is busy — up to `maxThreads`,
/// past which requests queue on the least busy one. Threads are never stopped while the
/// process runs: stopping one joins it, which would block the loop on a request in flight.
final class GraphWorkerPool: @unchecked Sendable {
    static let shared = GraphWorkerPool()
    /// Four requests per mailbox at a time (Graph's limit, the default `connections`) for
    /// eight busy mailboxes: a relay with more Graph routes than that queues a little.
    static let maxThreads = 32

    private let lock = Mutex()
    private var workers: [WorkerThread] = []
    private var busy: [Int] = []

    /// Runs `job` on a pool thread.
    func submit(_ job: @escaping @Sendable () -> Void) {
        let index: Int = lock.withLock {
            if let idle = busy.firstIndex(of: 0) { busy[idle] += 1; return idle }
            if workers.count < Self.maxThreads {
                workers.append(WorkerThread(name: "graph-\(workers.count + 1)"))
                busy.append(1)
                return workers.count - 1
            }
            let least = busy.indices.min { busy[$0] < busy[$1] }!
            busy[least] += 1
            return least
        }
        let worker = lock.withLock { workers[index] }
        worker.submit { [self] in
            job()
            lock.withLock { busy[index] -= 1 }
        }
    }

    /// Threads started so far (tests).
    var threadCount: Int { lock.withLock { workers.count } }
}
