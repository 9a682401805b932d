import Glibc
import Testing
@testable import SmarthostCore

@Suite struct ReactorEventLoopTests {
    @Test func timersFireInDeadlineOrderAndCancelledOnesNever() throws {
        let loop = try EventLoop()
        var fired: [Int] = []
        loop.schedule(afterMilliseconds: 30) { fired.append(3); loop.stop() }
        loop.schedule(afterMilliseconds: 10) { fired.append(1) }
        let cancelled = loop.schedule(afterMilliseconds: 5) { fired.append(99) }
        loop.schedule(afterMilliseconds: 20) { fired.append(2) }
        loop.cancel(cancelled)
        loop.run()
        #expect(fired == [1, 2, 3])
    }

    /// Both timers are due when the loop wakes; the first cancels the second (an idle
    /// connection handed a message whose stale idle timer would quit it): it must not run.
    @Test func timerCancelledByAnEarlierTimerOfTheSameBatchDoesNotRun() throws {
        let loop = try EventLoop()
        var fired: [String] = []
        var second: TimerID?
        loop.schedule(afterMilliseconds: 1) { fired.append("first"); loop.cancel(second) }
        second = loop.schedule(afterMilliseconds: 2) { fired.append("second") }
        let bothDue = MonotonicClock.nowMilliseconds() + 3
        while MonotonicClock.nowMilliseconds() < bothDue { usleep(1000) }
        loop.runOnce()
        #expect(fired == ["first"])
    }

    /// A timer that schedules another at once does not keep the batch going for ever: the
    /// new one runs on the next turn, after I/O has had its chance.
    @Test func timerScheduledByATimerRunsOnTheNextTurn() throws {
        let loop = try EventLoop()
        var fired: [String] = []
        loop.schedule(afterMilliseconds: 0) {
            fired.append("first")
            loop.schedule(afterMilliseconds: -1) { fired.append("second") }
        }
        loop.runOnce()
        #expect(fired == ["first"])
        loop.runOnce()
        #expect(fired == ["first", "second"])
    }

    @Test func executeFromAnotherThreadRunsOnTheLoop() throws {
        let loop = try EventLoop()
        let box = ReactorTestBox()
        var thread = pthread_t()
        let context = Unmanaged.passRetained(ReactorThreadContext { box.set(42); loop.execute { loop.stop() } })
        pthread_create(&thread, nil, { raw in
            let ctx = Unmanaged<ReactorThreadContext>.fromOpaque(raw!).takeRetainedValue()
            ctx.body()
            return nil
        }, context.toOpaque())
        // A safety net: a broken wake-up must fail the test, not hang it.
        loop.schedule(afterMilliseconds: 5000) { loop.stop() }
        loop.run()
        pthread_join(thread, nil)
        #expect(box.get() == 42)
    }

    @Test func streamConnectionEchoesOverLoopback() throws {
        let loop = try EventLoop()
        let listener = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        defer { listener.close() }
        let server = ReactorEchoServer(loop: loop, listener: listener)
        _ = try loop.register(fd: listener.fd, interest: .readable, handler: server)

        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        let connected = listener.address.withSockaddr { connect(client, $0, $1) }
        #expect(connected == 0)
        let payload = Array(repeating: UInt8(ascii: "x"), count: 300_000)
        var received: [UInt8] = []
        // The client side writes and reads from a plain thread-less loop of its own.
        _ = fcntl(client, F_SETFL, O_NONBLOCK)
        var sent = 0
        let deadline = MonotonicClock.nowMilliseconds() + 10_000
        while received.count < payload.count, MonotonicClock.nowMilliseconds() < deadline {
            if sent < payload.count {
                let n = payload.withUnsafeBytes { send(client, $0.baseAddress! + sent, min(65536, payload.count - sent), 0) }
                if n > 0 { sent += n }
            }
            loop.schedule(afterMilliseconds: 1) {}
            loop.runOnce()
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(client, &chunk, chunk.count, 0)
            if n > 0 { received.append(contentsOf: chunk[0..<n]) }
        }
        #expect(received == payload)
    }
}

private final class ReactorTestBox: @unchecked Sendable {
    private let lock = Mutex()
    private var value = 0
    func set(_ v: Int) { lock.withLock { value = v } }
    func get() -> Int { lock.withLock { value } }
}

private final class ReactorThreadContext {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

private final class ReactorEchoServer: IOHandler, StreamConnectionDelegate {
    let loop: EventLoop
    let listener: ListeningSocket
    var connections: [ObjectIdentifier: StreamConnection] = [:]

    init(loop: EventLoop, listener: ListeningSocket) {
        self.loop = loop
        self.listener = listener
    }

    func handle(_ events: IOEvents) {
        while case .accepted(let fd, let peer) = listener.accept() {
            if let connection = try? StreamConnection(loop: loop, fd: fd, peer: peer) {
                connection.delegate = self
                connections[ObjectIdentifier(connection)] = connection
            }
        }
    }

    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
    }

    func streamConnectionDidDrain(_ connection: StreamConnection) {}

    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) {
        connections[ObjectIdentifier(connection)] = nil
    }
}

@Suite struct ReactorTimerQueueTests {
    @Test func cancelledTimersDoNotPileUp() {
        var queue = TimerQueue()
        var fired = 0
        // A session re-arming its idle timer on every command: schedule, cancel, repeat.
        var timer = queue.schedule(at: 1_000_000) { fired += 1 }
        for step in 1...10_000 {
            queue.cancel(timer)
            timer = queue.schedule(at: 1_000_000 + Int64(step)) { fired += 1 }
        }
        #expect(queue.count == 1)
        #expect(queue.heapCountForTesting <= 2048)
        while let action = queue.popExpired(now: 2_000_000) { action() }
        #expect(fired == 1)
    }

    @Test func aTimerCancelledWhileItsBatchRunsIsNotPopped() {
        var queue = TimerQueue()
        var fired: [Int] = []
        _ = queue.schedule(at: 10) { fired.append(1) }
        let second = queue.schedule(at: 20) { fired.append(2) }
        _ = queue.schedule(at: 30) { fired.append(3) }
        let first = queue.popExpired(now: 100)
        first?()
        queue.cancel(second)
        while let action = queue.popExpired(now: 100) { action() }
        #expect(fired == [1, 3])
        #expect(queue.count == 0)
    }
}
