import Glibc

/// Empty `tmp/` files created ahead of time by a background thread, so `Spool.begin()` on
/// the event loop does not pay for inode allocation (on the benchmark machine ext4's create
/// path was the largest single cost of accepting a small message). Files not taken are
/// removed by `stop()`, and `recover()` clears `tmp/` at start-up anyway.
final class SpoolFilePool: @unchecked Sendable {
    struct File: Sendable {
        let id: SpoolID
        let path: String
        let fd: Int32
    }

    private let lock = SpoolLock()
    private let create: @Sendable () -> File?
    private let target: Int
    private var ready: [File] = []
    private var running = false
    private var stopping = false
    private var thread = pthread_t()

    init(target: Int, create: @escaping @Sendable () -> File?) {
        self.target = target
        self.create = create
    }

    /// A ready file, or nil when none is ready (the caller creates one itself).
    func take() -> File? {
        lock.withLock {
            if !running && !stopping { start() }
            guard let file = ready.popLast() else { return nil }
            lock.broadcast()
            return file
        }
    }

    /// Ends the thread (once) and removes the files nobody took.
    func stop() {
        let (wasRunning, handle) = lock.withLock { () -> (Bool, pthread_t) in
            stopping = true
            lock.broadcast()
            let was = running
            running = false
            return (was, thread)
        }
        if wasRunning { pthread_join(handle, nil) }
        let leftovers = lock.withLock { () -> [File] in
            let files = ready
            ready = []
            return files
        }
        for file in leftovers {
            close(file.fd)
            unlink(file.path)
        }
    }

    /// Called with the lock held.
    private func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var handle = pthread_t()
        let status = pthread_create(&handle, nil, { context in
            let pool = Unmanaged<SpoolFilePool>.fromOpaque(context!).takeRetainedValue()
            pool.refill()
            return nil
        }, context)
        if status == 0 {
            thread = handle
            running = true
        } else {
            Unmanaged<SpoolFilePool>.fromOpaque(context).release()
            stopping = true
        }
    }

    private func refill() {
        while true {
            let proceed = lock.withLock { () -> Bool in
                while !stopping && ready.count >= target { lock.wait() }
                return !stopping
            }
            guard proceed, let file = create() else { return }
            let keep = lock.withLock { () -> Bool in
                guard !stopping else { return false }
                ready.append(file)
                return true
            }
            if !keep {
                close(file.fd)
                unlink(file.path)
                return
            }
        }
    }
}
