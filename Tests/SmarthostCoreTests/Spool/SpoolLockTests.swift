import Foundation
import Testing
@testable import SmarthostCore

@Suite struct SpoolLockTests {
    @Test func aSecondHolderIsRefusedWithThePidOfTheFirst() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let first = try SpoolLock.acquire(spool: directory.root)
        #expect(throws: SpoolLock.Failure.inUse(spool: directory.root, pid: getpid())) {
            _ = try SpoolLock.acquire(spool: directory.root)
        }
        #expect("\(SpoolLock.Failure.inUse(spool: "/s", pid: 42))" == "spool /s is in use by pid 42")
        withExtendedLifetime(first) {}
    }

    @Test func theLockIsFreeAgainOnceItsHolderIsGone() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        do { _ = try SpoolLock.acquire(spool: directory.root) }
        let again = try SpoolLock.acquire(spool: directory.root)
        #expect(directory.bytes("lock") == Array("\(getpid())\n".utf8))
        #expect(directory.mode("lock") == 0o600)
        withExtendedLifetime(again) {}
    }

    /// Only bad bytes are quarantined: a message recovery cannot read for another reason
    /// (here a directory where a file should be: EISDIR, like EACCES or EIO) stays queued.
    @Test func recoveryQuarantinesCorruptContentOnlyNotReadErrors() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let spool = try Spool(root: directory.root)
        let good = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "good"))
        let corrupt = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "corrupt"))
        var bytes = directory.bytes("queue/\(corrupt)")!
        bytes[bytes.count / 2] ^= 0xFF
        directory.write("queue/\(corrupt)", bytes)
        let unreadable = SpoolID("1k0wj1h954a000w6ks")!
        try FileManager.default.createDirectory(atPath: "\(directory.root)/queue/\(unreadable)", withIntermediateDirectories: false)

        let recovery = try spool.recover()
        #expect(recovery.queued.map(\.id) == [good])
        #expect(recovery.quarantined.map(\.name) == [corrupt.rawValue])
        #expect(recovery.unreadable.map(\.name) == [unreadable.rawValue])
        #expect(directory.names("queue").contains(unreadable.rawValue))
        #expect(throws: SpoolError.self) { try spool.revalidate(unreadable.rawValue) }
    }
}
