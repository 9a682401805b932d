import Foundation
import Testing
@testable import SmarthostCore

/// The daemon-side rules, with a real spool, a real loop and socket, and a fake scheduler.
@Suite(.serialized) struct ControlQueueServiceTests {
    private struct Rig {
        let directory = SpoolTestDirectory()
        let spool: Spool
        let runner: ControlLoopThread
        let queue = FakeControlQueue()
        let service: QueueControlService
        let server: ControlServer
        let client: ControlClient

        init() throws {
            spool = try Spool(root: directory.root)
            runner = try ControlLoopThread()
            service = QueueControlService(loop: runner.loop, spool: spool, queue: queue)
            let path = controlSocketPath()
            server = try ControlServer(loop: runner.loop, path: path, handler: service)
            client = ControlClient(path: path, timeoutMilliseconds: 5000)
            runner.start()
        }

        func send(_ request: ControlRequest) throws -> ControlReply {
            try #require(try client.send(request))
        }

        func finish() {
            let server = self.server
            runner.stop { server.close() }
            service.shutdown()
            directory.remove()
        }
    }

    @Test func aMessageInDeliveryIsNeverDeleted() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let id = try SpoolTestData.storeOK(rig.spool, SpoolTestData.message())
        rig.runner.sync { rig.queue.states[id] = .inFlight }
        #expect(try rig.send(.delete(id)).code == .busy)
        #expect(try rig.spool.envelope(id).id == id)
        #expect(try rig.send(.retry(id)) == .ok("\(id) is being delivered now"))
    }

    @Test func aWaitingMessageIsForgottenThenDeleted() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let id = try SpoolTestData.storeOK(rig.spool, SpoolTestData.message())
        rig.runner.sync { rig.queue.states[id] = .waiting }
        #expect(try rig.send(.delete(id)) == .ok("\(id) deleted"))
        #expect(rig.runner.sync { rig.queue.forgotten } == [id])
        #expect(throws: SpoolError.notFound(id)) { try rig.spool.envelope(id) }
        #expect(try rig.send(.delete(id)).code == .notFound)
    }

    @Test func retryOfADeadLetterRequeuesItAndTellsTheScheduler() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let id = try SpoolTestData.storeOK(rig.spool, SpoolTestData.message())
        try rig.spool.moveToFailed(id, reason: "RCPT TO: 550 5.1.1 no such user")
        #expect(try rig.send(.flush(id)).code == .error)  // flush never revives a dead letter
        #expect(try rig.send(.retry(id)) == .ok("\(id) moved back to the queue, due now"))
        let envelope = try rig.spool.envelope(id)
        #expect(envelope.failure == nil)
        #expect(rig.runner.sync { rig.queue.enqueued.map(\.id) } == [id])
        #expect(rig.runner.sync { rig.queue.flushed } == [id])
        // Now the scheduler knows it: a second retry only makes it due.
        #expect(try rig.send(.retry(id)) == .ok("\(id) is due now"))
        #expect(rig.runner.sync { rig.queue.enqueued.count } == 1)
    }

    @Test func aQueuedMessageTheSchedulerDoesNotKnowIsLeftAlone() throws {
        // E.g. its dead-letter move or its commit is still on the way: touching it could
        // deliver it twice or lose track of it, so the client is told to ask again.
        let rig = try Rig()
        defer { rig.finish() }
        let id = try SpoolTestData.storeOK(rig.spool, SpoolTestData.message())
        #expect(try rig.send(.retry(id)).code == .busy)
        #expect(try rig.send(.delete(id)).code == .busy)
        #expect(try rig.spool.envelope(id).failure == nil)
        #expect(rig.runner.sync { rig.queue.enqueued.isEmpty })
    }

    @Test func deadLettersTheSchedulerDoesNotKnowCanBeDeleted() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let id = try SpoolTestData.storeOK(rig.spool, SpoolTestData.message())
        try rig.spool.moveToFailed(id, reason: "DATA: 554 rejected")
        #expect(try rig.send(.delete(id)) == .ok("\(id) deleted"))
        #expect(rig.directory.names("failed").isEmpty)
        #expect(try rig.send(.retry(SpoolID("0123456789abcdefgh")!)).code == .notFound)
    }

    @Test func statusAndFlushAll() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let dead = try SpoolTestData.storeOK(rig.spool, SpoolTestData.message())
        try rig.spool.moveToFailed(dead, reason: "550 no")
        rig.runner.sync { rig.queue.states[SpoolID("0123456789abcdefgh")!] = .waiting }
        let status = try #require(ControlStatus(parsing: try rig.send(.status).text))
        #expect(status.queued == 1 && status.deadLetters == 1 && status.delivered == 7 && status.pid == getpid())
        #expect(try rig.send(.flush(nil)).code == .ok)
        #expect(rig.runner.sync { rig.queue.flushed } == [nil])
    }
}
