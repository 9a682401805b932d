import Glibc

/// A few threads that run the same job over indices 0..<count and return when all are
/// done — for the committer to fsync a batch's files at once. Threads start on first use
/// and live until `stop()`. Plain pthreads, like the rest of the spool.
final class SpoolSyncPool: @unchecked Sendable {
    private let lock = Mutex()
    private let threadCount: Int
    private var started = false
    private var stopping = false
    private var job: ((Int) -> Void)?
    private var next = 0
    private var count = 0
    private var finished = 0

    init(threads: Int) {
        threadCount = threads
    }

    /// Runs `body(i)` for every i in 0..<count on the pool and the calling thread.
    func run(_ count: Int, _ body: @escaping (Int) -> Void) {
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        lock.withLock {
            startIfNeeded()
            job = body
            next = 0
            self.count = count
            finished = 0
            // The caller takes indices too: wake only as many threads as there is other
            // work, one each (a broadcast would wake all of them for every batch).
            for _ in 0..<min(count - 1, threadCount) { lock.signal() }
        }
        while let index = claim() {
            body(index)
            complete()
        }
        lock.withLock {
            while finished < self.count { lock.wait() }
            job = nil
        }
    }

    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
    }

    private func claim() -> Int? {
        lock.withLock {
            guard job != nil, next < count else { return nil }
            next += 1
            return next - 1
        }
    }

    private func complete() {
        lock.withLock {
            finished += 1
            // Only the caller waits for this, and only for the last one; idle threads
            // woken with it go back to sleep.
            if finished == count { lock.broadcast() }
        }
    }

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        for _ in 0..<threadCount {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let status = pthread_create(&thread, nil, { context in
                let pool = Unmanaged<SpoolSyncPool>.fromOpaque(context!).takeRetainedValue()
                pool.work()
                return nil
            }, context)
            if status == 0 { pthread_detach(thread) } else { Unmanaged<SpoolSyncPool>.fromOpaque(context).release() }
        }
    }

    private func work() {
        while true {
            let claimed: (Int, (Int) -> Void)? = lock.withLock {
                while !stopping && (job == nil || next >= count) { lock.wait() }
                guard !stopping, let job else { return nil }
                next += 1
                return (next - 1, job)
            }
            guard let (index, body) = claimed else { return }
            body(index)
            complete()
        }
    }
}

/// Results written by several threads, each to its own slot.
final class SpoolResultSlots: @unchecked Sendable {
    private let lock = Mutex()
    private var storage: [Result<SpoolID, SpoolError>?]

    init(count: Int) {
        storage = Array(repeating: nil, count: count)
    }

    func set(_ index: Int, _ result: Result<SpoolID, SpoolError>) {
        lock.withLock { storage[index] = result }
    }

    var results: [Result<SpoolID, SpoolError>] {
        lock.withLock { storage.map { $0 ?? .failure(.closed) } }
    }
}
