import Foundation
import Testing
@testable import SmarthostCore

@Suite struct SpoolReceiveTests {
    @Test func commitWritesDurableFileAndReadsBackByteExact() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        // Several appends, one larger than the 64 KiB buffer, to cover both write paths.
        var content = SpoolTestData.message(lines: 10)
        let incoming = try spool.begin()
        incoming.append(content)
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        incoming.append(big)
        content += big
        for chunk in stride(from: 0, to: 40_000, by: 7) {
            let piece = Array("x\(chunk)\r\n".utf8)
            incoming.append(piece[...])
            content += piece
        }
        #expect(incoming.contentLength == content.count)
        let results = SpoolTestResults()
        spool.commit(incoming, envelope: SpoolTestData.envelope(incoming.id)) { results.add($0) }
        let id = try results.wait(for: 1)[0].get()

        #expect(id == incoming.id)
        #expect(dir.names("tmp").isEmpty)
        #expect(dir.names("queue") == [id.rawValue])
        #expect(try spool.readMessage(id) == content)
        // The file on disk: header, content verbatim, then envelope and end marker.
        let file = try #require(dir.bytes("queue/" + id.rawValue))
        let header = Array("SMARTHOST-SPOOL 1 \(id.rawValue)\n".utf8)
        #expect(Array(file.prefix(header.count)) == header)
        #expect(Array(file[header.count..<header.count + content.count]) == content)
        #expect(file.suffix(48).starts(with: Array("END ".utf8)))

        var expected = SpoolTestData.envelope(id)
        expected.size = content.count
        #expect(try spool.envelope(id) == expected)
    }

    @Test func filesAre0600AndDirectories0700() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        try spool.markDeferred(id, attempts: 1, nextAttemptAt: 5, lastError: "x", doneRecipients: [])
        #expect(dir.mode("queue/" + id.rawValue) == 0o600)
        #expect(dir.mode("queue/" + id.rawValue + ".state") == 0o600)
        for sub in ["", "tmp", "queue", "failed", "quarantine"] {
            #expect(dir.mode(sub) == 0o700, "\(sub)")
        }
    }

    @Test func envelopeValuesWithNewlinesAndPercentRoundTrip() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let tricky = ["evil\r\nrcpt=injected@x", "100%@x", "t\u{e9}st@\u{e9}xample.com", "tab\there=@x"]
        let result = try SpoolTestData.store(spool, SpoolTestData.message()) { id in
            var envelope = SpoolTestData.envelope(id, recipients: tricky)
            envelope.sender = ""
            envelope.org = nil
            envelope.heloName = "helo\nid=other"
            return envelope
        }
        let id = try result.get()
        let envelope = try spool.envelope(id)
        #expect(envelope.recipients == tricky)
        #expect(envelope.sender == "")
        #expect(envelope.org == nil)
        #expect(envelope.heloName == "helo\nid=other")
        #expect(envelope.id == id)
    }

    @Test func abortLeavesNothingBehind() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let incoming = try spool.begin()
        incoming.append(SpoolTestData.message(lines: 5000))
        #expect(dir.names("tmp") == [incoming.id.rawValue])
        #expect(dir.mode("tmp/" + incoming.id.rawValue) == 0o600)
        incoming.abort()
        incoming.abort()
        #expect(dir.names("tmp").isEmpty)
        #expect(dir.names("queue").isEmpty)
    }

    @Test func smallContentIsKeptInMemoryUntilTheBufferSpills() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let small = try spool.begin()
        let content = SpoolTestData.message(lines: 10)
        small.append(content[..<40])
        small.append(content[40...])
        #expect(small.contentInMemory == content)
        small.abort()
        #expect(small.contentInMemory?.count == nil)

        let big = try spool.begin()
        big.append(SpoolTestData.message(lines: 100))
        #expect(big.contentInMemory?.count == SpoolTestData.message(lines: 100).count)
        big.append(SpoolTestData.message(lines: 5_000))  // past 64 KiB: written to the file
        #expect(big.contentInMemory?.count == nil)
        big.abort()
    }

    @Test func droppedIncomingMessageIsRemoved() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        do {
            let incoming = try spool.begin()
            incoming.append(SpoolTestData.message())
        }
        #expect(dir.names("tmp").isEmpty)
    }

    @Test func freeSpaceFloorRefusesWith452AndLeavesNoFile() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, minimumFreeBytes: UInt64.max)
        #expect {
            _ = try spool.begin()
        } throws: { error in
            guard let error = error as? SpoolError, case .insufficientStorage = error else { return false }
            return error.reply == SMTPReply(452, "4.3.1", "Insufficient system storage")
        }
        #expect(dir.names("tmp").isEmpty)
        #expect(dir.names("queue").isEmpty)
    }

    @Test func declaredSizeLargerThanTheDiskIsRefused() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root, minimumFreeBytes: 1)
        #expect(throws: SpoolError.self) { _ = try spool.begin(expectedSize: Int.max) }
        #expect(dir.names("tmp").isEmpty)
        let incoming = try spool.begin(expectedSize: 1000)
        incoming.abort()
    }

    @Test func diskFullWhileWritingFailsCommitWith452AndRemovesTmp() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let incoming = try spool.begin()
        // /dev/full answers every write with ENOSPC: swap it in under the tmp file's fd.
        let full = open("/dev/full", O_WRONLY)
        try #require(full >= 0)
        #expect(dup2(full, incoming.fd) == incoming.fd)
        close(full)
        incoming.append([UInt8](repeating: 0x41, count: 200_000))
        #expect(incoming.failure?.reply.code == 452)
        let results = SpoolTestResults()
        spool.commit(incoming, envelope: SpoolTestData.envelope(incoming.id)) { results.add($0) }
        let result = results.wait(for: 1)[0]
        guard case .failure(let error) = result else {
            Issue.record("commit succeeded on a full disk")
            return
        }
        #expect(error.reply == SMTPReply(452, "4.3.1", "Insufficient system storage"))
        #expect(dir.names("tmp").isEmpty)
        #expect(dir.names("queue").isEmpty)
        #expect(spool.commitStatistics.failed == 1)
        #expect(spool.commitStatistics.directorySyncs == 0)
    }

    @Test func otherIOErrorsBecome451() {
        let error = SpoolError.system("write", "/x", EIO)
        #expect(error.reply == SMTPReply(451, "4.3.0", "Local error in processing"))
        #expect(SpoolError.system("write", "/x", EDQUOT).reply.code == 452)
    }

    @Test func concurrentCommitsAreGroupedIntoBatches() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let results = SpoolTestResults()
        let threads = 4, perThread = 50
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for worker in 0..<threads {
            // Each worker receives its messages first, then commits them all at once,
            // so commits arrive while the committer is busy syncing earlier ones.
            let prepared = try (0..<perThread).map { index -> (IncomingMessage, [UInt8]) in
                let incoming = try spool.begin()
                let content = SpoolTestData.message(lines: 3, tag: "\(worker)-\(index)")
                incoming.append(content)
                return (incoming, content)
            }
            let box = SpoolTestBox(prepared)
            DispatchQueue.global().async(group: group) {
                start.wait()
                for (incoming, _) in box.value {
                    spool.commit(incoming, envelope: SpoolTestData.envelope(incoming.id)) { results.add($0) }
                }
            }
        }
        for _ in 0..<threads { start.signal() }
        let all = results.wait(for: threads * perThread)
        group.wait()
        let ids = try all.map { try $0.get() }
        #expect(ids.count == threads * perThread)
        #expect(Set(ids).count == ids.count)
        #expect(dir.names("queue").count == ids.count)
        #expect(dir.names("tmp").isEmpty)
        let stats = spool.commitStatistics
        #expect(stats.committed == threads * perThread)
        #expect(stats.batches < stats.committed)
        #expect(stats.directorySyncs == stats.batches)
        #expect(try spool.list(.queue).count == ids.count)
    }

    @Test func commitAfterShutdownFailsAndRemovesTmp() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        _ = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        spool.shutdown()
        let result = try SpoolTestData.store(spool, SpoolTestData.message())
        #expect(throws: SpoolError.closed) { try result.get() }
        #expect(dir.names("tmp").isEmpty)
        #expect(dir.names("queue").count == 1)
    }
}

/// Moves non-Sendable test values into a worker closure that alone uses them.
private final class SpoolTestBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
