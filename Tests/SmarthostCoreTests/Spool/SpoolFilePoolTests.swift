import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// The file pool's thread keeps refilling through failures: a disk full for a moment (or
/// out of inodes, or at the fd limit) must not end it for good while `take()` still
/// believes it runs.
@Suite struct SpoolFilePoolTests {
    @Test func refillSurvivesFailedCreates() throws {
        let dir = SpoolTestDirectory()
        try FileManager.default.createDirectory(atPath: dir.root + "/tmp", withIntermediateDirectories: true)
        defer { dir.remove() }
        let create = FailingCreate(failures: 3, directory: dir.root + "/tmp")
        let pool = SpoolFilePool(target: 4) { spare in create.make(spare) }
        defer { pool.stop() }

        #expect(pool.take() == nil, "nothing is ready before the thread has run")
        var taken: SpoolFilePool.File?
        let refilled = eventually(timeout: 10) {
            taken = pool.take()
            return taken != nil
        }
        #expect(refilled, "the pool never made a file after \(create.calls) attempts")
        #expect(create.calls > 3)
        if let taken {
            close(taken.fd)
            unlink(taken.path)
        }
    }

    @Test func stopEndsAThreadThatIsBackingOff() throws {
        let create = FailingCreate(failures: .max, directory: "/nonexistent")
        let pool = SpoolFilePool(target: 4) { spare in create.make(spare) }
        #expect(pool.take() == nil)
        #expect(eventually(timeout: 10) { create.calls >= 2 }, "the thread retries")
        // Joins the thread: the back-off wait wakes for stop rather than sleeping it out.
        pool.stop()
        #expect(pool.take() == nil, "a stopped pool starts no thread")
    }
}

/// Fails the first `failures` creates, then makes real files.
private final class FailingCreate: @unchecked Sendable {
    private let lock = SmarthostCore.Mutex()
    private var failuresLeft: Int
    private var count = 0
    private let directory: String
    private let ids = SpoolIDGenerator()

    init(failures: Int, directory: String) {
        failuresLeft = failures
        self.directory = directory
    }

    var calls: Int { lock.withLock { count } }

    func make(_ spare: SpoolFilePool.Spare?) -> SpoolFilePool.File? {
        let fail = lock.withLock { () -> Bool in
            count += 1
            guard failuresLeft > 0 else { return false }
            failuresLeft -= 1
            return true
        }
        if fail { return nil }
        return Spool.createTemporaryFile(in: directory, ids: ids, reusing: spare)
    }
}
