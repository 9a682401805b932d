import Glibc

/// Where a spooled message lives: waiting for delivery, or a dead letter.
public enum SpoolArea: String, Sendable, CaseIterable {
    case queue
    case failed
}

/// The durable message store: `tmp/`, `queue/`, `failed/`, `quarantine/` and `spare/`
/// (delivered messages' files kept for reuse, see `SpoolFilePool`) under one root, after
/// OpenSMTPD's `queue_fs.c` and Postfix's incoming→active queues.
///
/// Threading:
/// - `begin()`, `IncomingMessage.append/abort` and `commit(...)` are for the event-loop
///   thread: they never fsync (begin does one statvfs and one open).
/// - `commit` completions run on the spool's committer thread, once file and directory
///   are on disk; forward them to the loop (eventfd) before touching the session.
/// - Everything in `Spool+Delivery.swift` and `recover()` does synchronous, fsyncing
///   I/O: call it from a delivery or CLI thread, never from the event loop. Those
///   operations are safe between processes (the daemon and `smarthost queue …`): they
///   take an advisory flock on the message file and change state only by rename.
public final class Spool: Sendable {
    public let root: String
    /// `begin()` refuses new messages (452 4.3.1) when less than this is free. A reload
    /// changes it (`limits.min_free_space`); read on the loop, set on the loop.
    public var minimumFreeBytes: UInt64 {
        get { floorLock.withLock { floor.value } }
        set { floorLock.withLock { floor.value = newValue } }
    }
    private let floorLock = Mutex()
    private let floor: FloorBox
    let tmpDirectory: String
    let queueDirectory: String
    let failedDirectory: String
    let quarantineDirectory: String
    /// Files of delivered messages waiting to be reused (see `SpoolFilePool`).
    let spareDirectory: String
    let ids: SpoolIDGenerator
    let committer: SpoolCommitter
    /// nil unless the owner asked for files created ahead (the daemon does; tests and the
    /// CLI do not, so `tmp/` holds exactly the messages being received).
    let filePool: SpoolFilePool?
    /// Unix seconds; injected so tests can age messages.
    let clock: @Sendable () -> Int64

    /// Opens (creating with mode 0700 if missing) the spool at `root`; refuses directories
    /// another account owns or others may write to (`SpoolError.unsafeDirectory`). Does not recover:
    /// the daemon calls `recover()` once before listening; CLI commands do not.
    public init(root: String, minimumFreeBytes: UInt64 = 0, preallocatedFiles: Int = 0,
                clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) throws(SpoolError) {
        self.root = root
        floor = FloorBox(minimumFreeBytes)
        tmpDirectory = root + "/tmp"
        queueDirectory = root + "/queue"
        failedDirectory = root + "/failed"
        quarantineDirectory = root + "/quarantine"
        spareDirectory = root + "/spare"
        ids = SpoolIDGenerator()
        committer = SpoolCommitter(queueDirectory: queueDirectory)
        let tmp = tmpDirectory
        let generator = ids
        filePool = preallocatedFiles > 0 ? SpoolFilePool(target: preallocatedFiles) { spare in
            Spool.createTemporaryFile(in: tmp, ids: generator, reusing: spare)
        } : nil
        self.clock = clock
        for directory in [root, tmpDirectory, queueDirectory, failedDirectory, quarantineDirectory,
                          spareDirectory] {
            try Syscall.makeDirectory(directory)
            try Syscall.checkDirectory(directory)
        }
        try Syscall.syncDirectory(root)
    }

    deinit {
        filePool?.stop()
        committer.stop()
    }

    /// Commits what is already queued, then refuses further commits. Idempotent.
    public func shutdown() {
        filePool?.stop()
        committer.stop()
    }

    public var commitStatistics: SpoolCommitStatistics {
        committer.statistics
    }

    // MARK: receiving

    /// Starts a message: checks the free-space floor, then takes a file from the pool (a
    /// reused spare or one made ahead) or creates `tmp/<id>` (O_EXCL, 0600). Throws `.insufficientStorage` (452 4.3.1) when the disk is short, so the
    /// session can refuse DATA before the client sends 35 MiB. `expectedSize` (the
    /// client's SIZE= parameter, RFC 1870) must fit above the floor as well.
    public func begin(expectedSize: Int = 0) throws(SpoolError) -> IncomingMessage {
        try checkStorage(expectedSize: expectedSize)
        if let file = filePool?.take() {
            return IncomingMessage(id: file.id, path: file.path, fd: file.fd, staleLength: file.staleLength)
        }
        var attempt = 0
        while true {
            let id = ids.next()
            let path = tmpDirectory + "/" + id.rawValue
            do throws(SpoolError) {
                let fd = try Syscall.open(path, O_WRONLY | O_CREAT | O_EXCL)
                return IncomingMessage(id: id, path: path, fd: fd)
            } catch {
                // EEXIST needs another process with our clock, counter and random bits.
                attempt += 1
                guard case .io(_, _, EEXIST) = error, attempt < 8 else { throw error }
            }
        }
    }

    /// Throws `.insufficientStorage` (452 4.3.1) when less than the floor plus
    /// `expectedSize` is free. One statvfs: cheap enough for MAIL and DATA too.
    public func checkStorage(expectedSize: Int = 0) throws(SpoolError) {
        let free = try freeBytes()
        let floor = minimumFreeBytes
        let needed = floor.addingReportingOverflow(UInt64(max(0, expectedSize)))
        if needed.overflow || free < needed.partialValue {
            throw SpoolError.insufficientStorage(
                detail: "\(free) bytes free in \(root), need \(expectedSize) above a floor of \(floor)")
        }
    }

    /// Free bytes where messages are received (one statvfs).
    public func freeBytes() throws(SpoolError) -> UInt64 {
        try Syscall.freeBytes(tmpDirectory)
    }

    /// A file for the next message, for the file pool: the spare, opened where it lies with
    /// its old content still in it (see `SpoolFilePool`), when there is one, else a new
    /// `tmp/<id>` (0600, O_EXCL). nil on any error (the loop then creates its own file and
    /// reports the error itself).
    static func createTemporaryFile(in directory: String, ids: SpoolIDGenerator,
                                    reusing spare: SpoolFilePool.Spare?) -> SpoolFilePool.File? {
        if let spare {
            if let fd = try? Syscall.open(spare.path, O_WRONLY) {
                return SpoolFilePool.File(id: ids.next(), path: spare.path, fd: fd, staleLength: spare.length)
            }
            _ = unlink(spare.path)
        }
        for _ in 0..<8 {
            let id = ids.next()
            let path = directory + "/" + id.rawValue
            if let fd = try? Syscall.open(path, O_WRONLY | O_CREAT | O_EXCL) {
                return SpoolFilePool.File(id: id, path: path, fd: fd)
            }
        }
        return nil
    }

    /// Hands a fully received message to the committer thread. `completion` runs on that
    /// thread with the id once message and envelope are durable in `queue/` (send 250
    /// then), or with the error after the tmp file has been removed (send its `reply`).
    /// `envelope.id` and `envelope.size` are taken from `incoming`. After `shutdown()`
    /// the completion runs at once, on the calling thread, with `.closed`.
    public func commit(_ incoming: IncomingMessage, envelope: SpoolEnvelope,
                       completion: @escaping @Sendable (Result<SpoolID, SpoolError>) -> Void) {
        let handed = incoming.handOff(envelope: envelope)
        let job = SpoolCommitter.Job(
            id: incoming.id, fd: handed.fd, writtenPath: incoming.path,
            queuePath: path(.queue, incoming.id), tail: handed.tail, truncateTo: handed.truncateTo,
            failure: handed.failure, completion: completion)
        if !committer.submit(job) {
            Syscall.close(handed.fd)
            _ = unlink(incoming.path)
            completion(.failure(.closed))
        }
    }

    // MARK: paths

    func path(_ area: SpoolArea, _ id: SpoolID) -> String {
        directory(area) + "/" + id.rawValue
    }

    func statePath(_ area: SpoolArea, _ id: SpoolID) -> String {
        path(area, id) + ".state"
    }

    func directory(_ area: SpoolArea) -> String {
        switch area {
        case .queue: return queueDirectory
        case .failed: return failedDirectory
        }
    }
}

/// The free-space floor's storage, behind `Spool.floorLock` (the Spool itself is Sendable).
private final class FloorBox: @unchecked Sendable {
    var value: UInt64
    init(_ value: UInt64) { self.value = value }
}
