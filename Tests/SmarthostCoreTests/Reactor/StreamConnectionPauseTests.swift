import Glibc
import Testing
@testable import SmarthostCore

/// Pausing reading (while a message commits) must hold input back until the resume, and —
/// since most clients wait for their reply — it must not cost epoll_ctl calls when no input
/// comes in between: EPOLLIN stays registered until the socket turns readable while paused.
@Suite struct ReactorStreamConnectionPauseTests {
    final class Recorder: StreamConnectionDelegate {
        var received: [UInt8] = []
        var closed = false
        func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
            received += bytes
        }
        func streamConnectionDidDrain(_ connection: StreamConnection) {}
        func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) { closed = true }
    }

    /// One pass of the loop that cannot block: a 1 ms timer bounds the wait.
    private func spin(_ loop: EventLoop, times: Int = 3) {
        for _ in 0..<times {
            loop.schedule(afterMilliseconds: 1) {}
            loop.runOnce()
        }
    }

    @Test func inputWhilePausedWaitsForTheResumeAndPausesWithoutInputStayRegistered() throws {
        let loop = try EventLoop()
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0)
        defer { close(pair[1]) }
        let connection = try StreamConnection(loop: loop, fd: pair[0], peer: SocketAddress())
        let recorder = Recorder()
        connection.delegate = recorder

        // A pause and resume with nothing arriving: EPOLLIN never leaves the registration.
        connection.setReading(false)
        #expect(connection.registeredInterest == [.readable])
        spin(loop)
        connection.setReading(true)
        #expect(connection.registeredInterest == [.readable])

        // Input while paused: not delivered, and now EPOLLIN is taken out (no busy loop).
        connection.setReading(false)
        #expect(send(pair[1], "MAIL FROM:<a@b>\r\n", 17, 0) == 17)
        spin(loop)
        #expect(recorder.received.isEmpty)
        #expect(connection.registeredInterest == [])

        // Resumed: the held input arrives, whole.
        connection.setReading(true)
        #expect(connection.registeredInterest == [.readable])
        spin(loop)
        #expect(recorder.received == Array("MAIL FROM:<a@b>\r\n".utf8))

        // Closing after the flush ends reading for good, lazily paused or not.
        connection.setReading(false)
        connection.closeAfterFlush()
        #expect(recorder.closed)
    }

    /// A client that resets or closes while its message commits: epoll reports the hang-up
    /// whatever the mask, so the paused connection leaves the epoll set (or the loop would
    /// spin until the commit ends) and learns of the hang-up once reading resumes.
    @Test func hangUpWhilePausedParksUntilTheResume() throws {
        let loop = try EventLoop()
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0)
        let connection = try StreamConnection(loop: loop, fd: pair[0], peer: SocketAddress())
        let recorder = Recorder()
        connection.delegate = recorder

        connection.setReading(false)
        #expect(send(pair[1], "QUIT\r\n", 6, 0) == 6)
        close(pair[1])
        spin(loop)
        #expect(connection.isParked)
        #expect(!recorder.closed)
        #expect(recorder.received.isEmpty)
        // Parked means quiet: more passes of the loop see no event for it at all.
        let dispatched = loop.ioEventsDispatched
        spin(loop, times: 5)
        #expect(loop.ioEventsDispatched == dispatched, "the loop spun on the hung-up socket")

        connection.setReading(true)
        #expect(!connection.isParked)
        spin(loop)
        #expect(recorder.received == Array("QUIT\r\n".utf8), "what came before the hang-up is still read")
        #expect(recorder.closed)
    }

    @Test func manyJobsFromAnotherThreadAllRunOnTheLoopOnce() throws {
        let loop = try EventLoop()
        let counter = ReactorTestCounter()
        let jobs = 10_000
        var thread = pthread_t()
        let context = Unmanaged.passRetained(ReactorTestJob {
            for _ in 0..<jobs { loop.execute { counter.add() } }
            loop.execute { loop.stop() }
        })
        pthread_create(&thread, nil, { raw in
            Unmanaged<ReactorTestJob>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context.toOpaque())
        loop.schedule(afterMilliseconds: 10_000) { loop.stop() }
        loop.run()
        pthread_join(thread, nil)
        #expect(counter.value == jobs, "every job queued from another thread runs, once")
    }
}

final class ReactorTestCounter: @unchecked Sendable {
    private let lock = Mutex()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

final class ReactorTestJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
