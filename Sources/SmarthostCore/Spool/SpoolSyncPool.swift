import Glibc

/// A few threads that run the same job over indices 0..<count and return the results when
/// all are done — for the committer to fsync a batch's files at once. Threads start on
/// first use and live until `stop()`. Plain pthreads, like the rest of the spool.
///
/// A thread takes the lock once per index: to hand in the result of the index it ran and
/// claim the next in the same step (claiming, reporting and storing under three locks
/// made this lock contended enough to show in the relay's futex count).
final class SpoolSyncPool: @unchecked Sendable {
    typealias Outcome = Result<SpoolID, SpoolError>

    private let lock = Mutex()
    private let threadCount: Int
    private var started = false
    private var stopping = false
    private var job: ((Int) -> Outcome)?
    private var next = 0
    private var count = 0
    private var finished = 0
    private var results: [Outcome?] = []

    init(threads: Int) {
        threadCount = threads
    }

    /// Runs `body(i)` for every i in 0..<count on the pool and the calling thread; the
    /// results in index order.
    func run(_ count: Int, _ body: @escaping (Int) -> Outcome) -> [Outcome] {
        if count <= 1 {
            return count == 1 ? [body(0)] : []
        }
        lock.withLock {
            startIfNeeded()
            job = body
            next = 0
            self.count = count
            finished = 0
            results = Array(repeating: nil, count: count)
            // The caller takes indices too: wake only as many threads as there is other
            // work, one each (a broadcast would wake all of them for every batch).
            for _ in 0..<min(count - 1, threadCount) { lock.signal() }
        }
        var done: (Int, Outcome)?
        while true {
            let claimed: Int? = lock.withLock {
                if let (index, outcome) = done {
                    record(index, outcome)
                    done = nil
                }
                guard job != nil, next < self.count else { return nil }
                next += 1
                return next - 1
            }
            guard let index = claimed else { break }
            done = (index, body(index))
        }
        return lock.withLock {
            while finished < self.count { lock.wait() }
            job = nil
            defer { results = [] }
            return results.map { $0 ?? .failure(.closed) }
        }
    }

    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
    }

    /// Called with the lock held.
    private func record(_ index: Int, _ outcome: Outcome) {
        results[index] = outcome
        finished += 1
        // Only the caller waits for this, and only for the last one; idle threads woken
        // with it go back to sleep.
        if finished == count { lock.broadcast() }
    }

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        for _ in 0..<threadCount {
            // Fewer threads than asked (the system refused one) still sync every file: the
            // caller's thread takes part in `run` too.
            (try? SystemThread.start(name: "spool-sync") { [self] in work() })?.detach()
        }
    }

    private func work() {
        var done: (Int, Outcome)?
        while true {
            let claimed: (Int, (Int) -> Outcome)? = lock.withLock {
                if let (index, outcome) = done {
                    record(index, outcome)
                    done = nil
                }
                while !stopping && (job == nil || next >= count) { lock.wait() }
                guard !stopping, let job else { return nil }
                next += 1
                return (next - 1, job)
            }
            guard let (index, body) = claimed else { return }
            done = (index, body(index))
        }
    }
}
