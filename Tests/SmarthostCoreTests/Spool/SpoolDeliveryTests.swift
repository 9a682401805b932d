import Foundation
import Testing
@testable import SmarthostCore

@Suite struct SpoolDeliveryTests {
    @Test func deferringRewritesOnlyTheStateFile() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message(lines: 200))
        let name = "queue/" + id.rawValue
        let before = (dir.bytes(name), dir.inode(name))
        try spool.markDeferred(id, attempts: 1, nextAttemptAt: 10, lastError: "421 busy", doneRecipients: [])
        try spool.markDeferred(id, attempts: 2, nextAttemptAt: 20, lastError: "421 again", doneRecipients: ["b@example.com"])
        #expect(dir.bytes(name) == before.0)
        #expect(dir.inode(name) == before.1)
        let envelope = try spool.envelope(id)
        #expect(envelope.attempts == 2)
        #expect(envelope.nextAttemptAt == 20)
        #expect(envelope.lastError == "421 again")
        #expect(envelope.pendingRecipients == ["a@example.com"])
        #expect(dir.names("tmp").isEmpty)
    }

    @Test func refusedRecipientsAreKeptWithTheirReplyAndRetriedOnlyByAnOperator() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        let reply = "550 5.1.1 <b@example.com>: no such user\tafter a tab"
        try spool.markDeferred(id, attempts: 1, nextAttemptAt: 10, lastError: "451 later", doneRecipients: [],
                               refusedRecipients: ["b@example.com": reply])
        let deferred = try spool.envelope(id)
        #expect(deferred.refusedRecipients == ["b@example.com": reply])
        #expect(deferred.pendingRecipients == ["a@example.com"])

        var progress = deferred
        progress.attempts = 2
        progress.doneRecipients = ["a@example.com"]
        try spool.moveToFailed(id, reason: "recipient refused: b@example.com: " + reply, progress: progress)
        let dead = try spool.envelope(id)
        #expect(dead.attempts == 2)
        #expect(dead.doneRecipients == ["a@example.com"])
        #expect(dead.refusedRecipients == ["b@example.com": reply])

        try spool.retryFailed(id)
        let again = try spool.envelope(id)
        #expect(again.pendingRecipients == ["b@example.com"], "retry sends to the refused one, never again to a done one")
    }

    @Test func deliveredMessageLeavesNoFiles() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        try spool.markDeferred(id, attempts: 1, nextAttemptAt: 10, lastError: nil, doneRecipients: [])
        try spool.markDelivered(id)
        #expect(dir.names("queue").isEmpty)
        #expect(throws: SpoolError.notFound(id)) { try spool.markDelivered(id) }
        #expect(throws: SpoolError.notFound(id)) { try spool.envelope(id) }
    }

    @Test func deadLetterKeepsReasonAndCanBeRetried() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let now = 1_800_000_000 as Int64
        let spool = try Spool(root: dir.root, clock: { now })
        let content = SpoolTestData.message(lines: 30)
        let id = try SpoolTestData.storeOK(spool, content)
        try spool.markDeferred(id, attempts: 4, nextAttemptAt: 99, lastError: "421", doneRecipients: ["a@example.com"])
        let reason = "step=recipient upstream=smtp.gmail.com:587 reply=550 5.1.1 <b@example.com>: no such user"
        try spool.moveToFailed(id, reason: reason)

        #expect(dir.names("queue").isEmpty)
        #expect(dir.names("failed") == [id.rawValue, id.rawValue + ".state"])
        #expect(try spool.list(.queue).isEmpty)
        let dead = try #require(try spool.list(.failed).first)
        #expect(dead.failure == reason)
        #expect(dead.failedAt == now)
        #expect(dead.attempts == 4)
        #expect(try spool.readMessage(id) == content)
        #expect(throws: SpoolError.notFound(id)) { try spool.markDeferred(id, attempts: 1, nextAttemptAt: 0, lastError: nil, doneRecipients: []) }

        try spool.retryFailed(id)
        #expect(dir.names("failed").isEmpty)
        let again = try #require(try spool.list(.queue).first)
        #expect(again.failure == nil)
        #expect(again.attempts == 0)
        #expect(again.nextAttemptAt == 0)
        #expect(again.queuedAt == now)
        #expect(again.doneRecipients == ["a@example.com"])
        #expect(try Spool(root: dir.root).recover().queued.map(\.id) == [id])
    }

    @Test func deleteRemovesQueuedAndDeadLetters() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let queued = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "1"))
        let dead = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "2"))
        try spool.moveToFailed(dead, reason: "550")
        try spool.delete(queued)
        try spool.delete(dead)
        #expect(dir.names("queue").isEmpty)
        #expect(dir.names("failed").isEmpty)
        #expect(throws: SpoolError.notFound(dead)) { try spool.delete(dead) }
    }

    @Test func aMoveWaitsForAnotherHoldersLock() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        // Another process (say `smarthost queue delete`) holds the message's lock.
        let other = open(dir.root + "/queue/" + id.rawValue, O_RDONLY)
        #expect(flock(other, LOCK_EX) == 0)
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? spool.moveToFailed(id, reason: "550")
            finished.signal()
        }
        #expect(finished.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(dir.names("failed").isEmpty)
        // The holder deletes the message, then lets go: the mover must not resurrect it.
        unlink(dir.root + "/queue/" + id.rawValue)
        close(other)
        #expect(finished.wait(timeout: .now() + 10) == .success)
        #expect(dir.names("failed").isEmpty)
        #expect(dir.names("queue").isEmpty)
    }

    @Test func unknownIdsAreNotFound() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try #require(SpoolID("0123456789abcdefgh"))
        #expect(throws: SpoolError.notFound(id)) { try spool.readMessage(id) }
        #expect(throws: SpoolError.notFound(id)) { try spool.retryFailed(id) }
        #expect(throws: SpoolError.notFound(id)) { try spool.moveToFailed(id, reason: "x") }
    }
}
