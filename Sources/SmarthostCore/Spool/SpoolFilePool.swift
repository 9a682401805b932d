import Glibc

/// Empty `tmp/` files made ready ahead of time by a background thread, so `Spool.begin()` on
/// the event loop does not pay for inode allocation (on the benchmark machine ext4's create
/// path was the largest single cost of accepting a small message).
///
/// Files of delivered messages come back here as spares (`spare/<old id>`) and are opened
/// for the next message where they lie, instead of being created anew: with a message
/// delivered for each one accepted, the spool then allocates and frees no inode at all
/// (ext4 scans the inode table past recently freed inodes on every create, which made
/// inode churn a third of the relay's CPU time). A spare is neither truncated nor renamed
/// before reuse: the new message overwrites it from the start, so its blocks are rewritten
/// rather than freed and allocated again (freeing them also cost a discard per file on a
/// `discard` mount), and the committer cuts off any stale tail and renames it straight to
/// `queue/<new id>`. Files and spares not taken are removed by `stop()`, and `recover()`
/// clears `tmp/` and `spare/` at start-up anyway: nothing in either was ever answered 250.
final class SpoolFilePool: @unchecked Sendable {
    struct File: Sendable {
        let id: SpoolID
        let path: String
        let fd: Int32
        /// Bytes already in the file (a reused spare): what the new message does not
        /// overwrite must be cut off before the file is committed.
        var staleLength = 0
    }

    /// A delivered message's file in `spare/`, with its size.
    struct Spare: Sendable {
        let path: String
        let length: Int
    }

    private let lock = Mutex()
    /// Makes a ready file, from the spare at the given path when there is one.
    private let create: @Sendable (Spare?) -> File?
    private let target: Int
    private let spareLimit: Int
    private var ready: [File] = []
    private var spares: [Spare] = []
    private var running = false
    private var stopping = false
    private var thread: SystemThread?

    /// Larger delivered files are removed, not kept: at most `8 * target` of these wait.
    static let spareMaximumBytes = 64 * 1024

    init(target: Int, create: @escaping @Sendable (Spare?) -> File?) {
        self.target = target
        spareLimit = 8 * target
        self.create = create
    }

    /// Keeps a delivered message's file (already renamed into `spare/`) for reuse.
    /// False when enough spares wait or the pool is stopping: the caller removes the file.
    func offerSpare(_ spare: Spare) -> Bool {
        lock.withLock {
            guard !stopping, spares.count < spareLimit else { return false }
            spares.append(spare)
            return true
        }
    }

    /// A ready file, or nil when none is ready (the caller creates one itself).
    func take() -> File? {
        lock.withLock {
            if !running && !stopping { start() }
            guard let file = ready.popLast() else { return nil }
            // The thread refills from half empty to full in one go: waking it for every
            // file taken made the lock the relay's most contended one.
            if ready.count <= lowWater { lock.signal() }
            return file
        }
    }

    private var lowWater: Int { target / 2 }

    /// Ends the thread (once) and removes the files nobody took.
    func stop() {
        let (wasRunning, handle) = lock.withLock { () -> (Bool, SystemThread?) in
            stopping = true
            lock.broadcast()
            let was = running
            running = false
            return (was, thread)
        }
        if wasRunning { handle?.join() }
        let (leftovers, leftoverSpares) = lock.withLock { () -> ([File], [Spare]) in
            defer { ready = []; spares = [] }
            return (ready, spares)
        }
        for file in leftovers {
            close(file.fd)
            unlink(file.path)
        }
        for spare in leftoverSpares { unlink(spare.path) }
    }

    /// Called with the lock held.
    private func start() {
        do {
            thread = try SystemThread.start(name: "spool-files") { [self] in refill() }
            running = true
        } catch {
            // No files made ahead: `begin()` creates its own, as without a pool.
            stopping = true
        }
    }

    /// Waits after a failed create, doubling from the first to the last: a full disk, no
    /// free inodes or the fd limit usually pass, and until then `begin()` creates its own
    /// file and reports the error itself.
    static let retryMilliseconds = (first: 10, last: 1000)

    private func refill() {
        var filling = true
        var retryDelay = Self.retryMilliseconds.first
        while true {
            let (proceed, spare) = lock.withLock { () -> (Bool, Spare?) in
                if ready.count >= target { filling = false }
                while !stopping && !filling {
                    lock.wait()
                    filling = ready.count <= lowWater
                }
                return (!stopping, stopping ? nil : spares.popLast())
            }
            guard proceed else { return }
            guard let file = create(spare) else {
                // The thread must outlive the failure: `take()` never starts a second one.
                let stopped = lock.withLock { () -> Bool in
                    if !stopping { lock.wait(milliseconds: retryDelay) }
                    return stopping
                }
                if stopped { return }
                retryDelay = min(2 * retryDelay, Self.retryMilliseconds.last)
                continue
            }
            retryDelay = Self.retryMilliseconds.first
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
