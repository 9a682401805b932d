import Foundation
import Testing
@testable import SmarthostCore

/// Delivered messages' files are reused for new messages (no inode churn), and nothing of
/// the old message survives in the new one.
@Suite struct SpoolSpareFileTests {
    /// Old and new message sizes in lines: a reused file is overwritten in place, so a
    /// shorter new message must have the old tail cut off, and a longer one must grow it.
    @Test(arguments: [(400, 3), (3, 400), (50, 50)])
    func deliveredFileIsReusedInPlaceForANewMessage(oldLines: Int, newLines: Int) throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, preallocatedFiles: 2)
        let first = try SpoolTestData.storeOK(spool, SpoolTestData.message(lines: oldLines, tag: "old"))
        let inode = dir.inode("queue/" + first.rawValue)
        try spool.markDelivered(first)
        #expect(dir.names("queue").isEmpty)
        #expect(dir.names("spare") == [first.rawValue])

        // The pool thread picks the spare up on its next refill; a few messages get there
        // (a loaded machine may take longer to schedule that thread, hence time, not count).
        var reused: (SpoolID, [UInt8])?
        let deadline = Date().addingTimeInterval(30)
        var index = 0
        while reused == nil && Date() < deadline {
            index += 1
            let content = SpoolTestData.message(lines: newLines, tag: "new\(index)")
            let id = try SpoolTestData.storeOK(spool, content)
            if dir.inode("queue/" + id.rawValue) == inode { reused = (id, content) }
            usleep(5_000)
        }
        let (id, content) = try #require(reused, "the delivered file's inode was never reused; spare/ \(dir.names("spare")), tmp/ \(dir.names("tmp").count) files")
        #expect(id != first)
        #expect(try spool.readMessage(id) == content)
        #expect(try spool.envelope(id).id == id)
        #expect(dir.names("spare").isEmpty)
        spool.shutdown()

        // Exactly the new message is left: nothing of the old one after its end marker, and
        // recovery's full check (lengths, both CRCs) passes for every queued file.
        let file = try #require(dir.bytes("queue/" + id.rawValue))
        #expect(!String(decoding: file, as: UTF8.self).contains("old"))
        let recovery = try Spool(root: dir.root).recover()
        #expect(recovery.queued.map(\.id).contains(id))
        #expect(dir.names("quarantine").isEmpty)
    }

    @Test func abortedMessageInAReusedFileLeavesNothing() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, preallocatedFiles: 1)
        defer { spool.shutdown() }
        let first = try SpoolTestData.storeOK(spool, SpoolTestData.message(lines: 20))
        try spool.markDelivered(first)
        // Until the pool has opened the spare, a message gets a fresh tmp/ file instead.
        let deadline = Date().addingTimeInterval(10)
        var reusedSpare = false
        while !reusedSpare && Date() < deadline {
            let incoming = try spool.begin()
            incoming.append(Array("partial\r\n".utf8))
            reusedSpare = incoming.path.hasSuffix("spare/" + first.rawValue)
            incoming.abort()
            usleep(5_000)
        }
        #expect(reusedSpare, "the pool never handed out the spare")
        #expect(!dir.names("spare").contains(first.rawValue))
        #expect(dir.names("queue").isEmpty)
    }

    @Test func largeDeliveredFileIsRemovedNotKept() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, preallocatedFiles: 2)
        defer { spool.shutdown() }
        let big = SpoolTestData.message(lines: 3_000)
        #expect(big.count > SpoolFilePool.spareMaximumBytes)
        let id = try SpoolTestData.storeOK(spool, big)
        try spool.markDelivered(id)
        #expect(dir.names("queue").isEmpty)
        #expect(dir.names("spare").isEmpty)
    }

    /// Keeping a spare is an optimisation: when spare/ refuses the file (here it is not even
    /// a directory), the delivered message is removed all the same, not left to be sent again.
    @Test func deliveredFileIsRemovedWhenSpareRefusesIt() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, preallocatedFiles: 2)
        defer { spool.shutdown() }
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        try FileManager.default.removeItem(atPath: dir.root + "/spare")
        dir.write("spare", [])
        try spool.markDelivered(id)
        #expect(dir.names("queue").isEmpty)
    }

    @Test func withoutAFilePoolDeliveredFilesAreRemoved() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        try spool.markDelivered(id)
        #expect(dir.names("queue").isEmpty)
        #expect(dir.names("spare").isEmpty)
    }

    @Test func shutdownAndRecoveryRemoveSpares() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, preallocatedFiles: 2)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        try spool.markDelivered(id)
        #expect(dir.names("spare") == [id.rawValue])
        spool.shutdown()
        #expect(dir.names("spare").isEmpty)
        #expect(dir.names("tmp").isEmpty)

        // A crash leaves spares behind: they were delivered, so recovery drops them.
        dir.write("spare/" + id.rawValue, SpoolTestData.message())
        let recovery = try Spool(root: dir.root).recover()
        #expect(recovery.queued.isEmpty)
        #expect(dir.names("spare").isEmpty)
    }
}
