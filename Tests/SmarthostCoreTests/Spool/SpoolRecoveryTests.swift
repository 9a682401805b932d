import Foundation
import Testing
@testable import SmarthostCore

@Suite struct SpoolRecoveryTests {
    @Test func validMessagesSurviveAReopenWithTheirState() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let content = SpoolTestData.message(lines: 100)
        let id: SpoolID
        do {
            let spool = try Spool(root: dir.root)
            id = try SpoolTestData.storeOK(spool, content)
            try spool.markDeferred(id, attempts: 3, nextAttemptAt: 1_700_000_600,
                                   lastError: "451 4.7.0 try later\r\n(step: data)", doneRecipients: ["a@example.com"])
        }
        let reopened = try Spool(root: dir.root)
        let recovery = try reopened.recover()
        #expect(recovery.quarantined.isEmpty)
        #expect(recovery.queued.map(\.id) == [id])
        let envelope = try #require(recovery.queued.first)
        #expect(envelope.attempts == 3)
        #expect(envelope.nextAttemptAt == 1_700_000_600)
        #expect(envelope.lastError == "451 4.7.0 try later\r\n(step: data)")
        #expect(envelope.doneRecipients == ["a@example.com"])
        #expect(envelope.pendingRecipients == ["b@example.com"])
        #expect(envelope.size == content.count)
        #expect(try reopened.readMessage(id) == content)
    }

    @Test func tmpLeftoversAreRemoved() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let unfinished = try spool.begin()
        unfinished.append(SpoolTestData.message())
        dir.write("tmp/0123456789abcdefgh.state.99", [1, 2, 3])
        // Simulate a crash: the process dies without abort, the files stay.
        let leftover = try #require(dir.bytes("tmp/" + unfinished.id.rawValue))
        unfinished.abort()
        dir.write("tmp/" + unfinished.id.rawValue, leftover)

        let recovery = try Spool(root: dir.root).recover()
        #expect(recovery.removedTemporaryFiles == 2)
        #expect(recovery.queued.isEmpty)
        #expect(dir.names("tmp").isEmpty)
    }

    @Test(arguments: SpoolDamage.allCases)
    func damagedFilesAreQuarantinedNeverReturned(_ damage: SpoolDamage) throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let good = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "good"))
        let bad = try SpoolTestData.storeOK(spool, SpoolTestData.message(lines: 50, tag: "bad"))
        try spool.markDeferred(bad, attempts: 1, nextAttemptAt: 0, lastError: nil, doneRecipients: [])
        let name = "queue/" + bad.rawValue
        dir.write(name, damage.apply(to: try #require(dir.bytes(name))))

        let recovery = try Spool(root: dir.root).recover()
        #expect(recovery.queued.map(\.id) == [good])
        #expect(recovery.quarantined.map(\.name) == [bad.rawValue])
        #expect(dir.names("queue") == [good.rawValue])
        #expect(dir.names("quarantine") == [bad.rawValue, bad.rawValue + ".reason", bad.rawValue + ".state"])
        let reason = String(decoding: try #require(dir.bytes("quarantine/" + bad.rawValue + ".reason")), as: UTF8.self)
        #expect(reason.hasPrefix(recovery.quarantined[0].reason))
        #expect(throws: SpoolError.notFound(bad)) { try spool.readMessage(bad) }
    }

    @Test func readMessageRefusesADamagedFileEvenWithoutRecovery() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message(lines: 50))
        let name = "queue/" + id.rawValue
        dir.write(name, SpoolDamage.flippedContentByte.apply(to: try #require(dir.bytes(name))))
        #expect(throws: SpoolError.corrupt(id, reason: "content checksum mismatch")) { try spool.readMessage(id) }
        // list reads envelopes only (cheap for `queue list`); content is checked on read.
        #expect(try spool.list(.queue).map(\.id) == [id])
    }

    @Test func strangeNamesAndOrphanStatesAreCleared() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        dir.write("queue/notes.txt", Array("hello".utf8))
        dir.write("queue/0123456789abcdefgh.state", [0])
        dir.write("failed/0123456789abcdefgj.state", [0])

        let recovery = try spool.recover()
        #expect(recovery.queued.map(\.id) == [id])
        #expect(recovery.quarantined == [.init(name: "notes.txt", reason: "unexpected file name in queue/")])
        #expect(recovery.removedOrphanStates == 2)
        #expect(dir.names("queue") == [id.rawValue])
        #expect(dir.names("failed").isEmpty)
    }

    @Test func quarantineNeverOverwritesEarlierEvidence() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        dir.write("queue/0123456789abcdefgh", Array("first".utf8))
        _ = try spool.recover()
        dir.write("queue/0123456789abcdefgh", Array("second".utf8))
        _ = try spool.recover()
        #expect(dir.bytes("quarantine/0123456789abcdefgh") == Array("first".utf8))
        #expect(dir.bytes("quarantine/0123456789abcdefgh.1") == Array("second".utf8))
    }
}

/// Ways a message file can be damaged on disk.
enum SpoolDamage: CaseIterable, Sendable {
    case truncatedInContent, truncatedInEndMarker, corruptEndMarker, flippedContentByte,
         flippedEnvelopeByte, appendedGarbage, garbageOnly, empty

    func apply(to file: [UInt8]) -> [UInt8] {
        var bytes = file
        switch self {
        case .truncatedInContent: return Array(bytes.prefix(bytes.count / 2))
        case .truncatedInEndMarker: return Array(bytes.dropLast(10))
        case .corruptEndMarker: bytes[bytes.count - 30] = UInt8(ascii: "z")
        case .flippedContentByte: bytes[100] ^= 0x01
        case .flippedEnvelopeByte: bytes[bytes.count - 60] ^= 0x01
        case .appendedGarbage: bytes += Array("trailing\r\n".utf8)
        case .garbageOnly: return (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        case .empty: return []
        }
        return bytes
    }
}
