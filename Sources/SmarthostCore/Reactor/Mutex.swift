import Glibc

/// A pthread mutex with one condition variable and a Swift face: the one synchronisation
/// primitive for what the loop shares with its helper threads (work queues, the spool's
/// committer, file pool and sync threads). No Foundation, no Dispatch. The pthread objects
/// live in their own allocations: they must never move in memory.
public final class Mutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        let mutexStatus = pthread_mutex_init(mutex, nil)
        let condStatus = pthread_cond_init(condition, nil)
        precondition(mutexStatus == 0 && condStatus == 0, "pthread init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for `signal()`/`broadcast()`; call only inside `withLock`, in a loop over the
    /// predicate (wake-ups can be spurious).
    public func wait() {
        pthread_cond_wait(condition, mutex)
    }

    /// Wakes one waiter: for handing one piece of work to one of several idle threads.
    public func signal() {
        pthread_cond_signal(condition)
    }

    public func broadcast() {
        pthread_cond_broadcast(condition)
    }
}
