import Glibc
import Testing
@testable import SmarthostCore

/// `WorkerThread.waitForBacklog`: another thread is held while too many jobs are unfinished
/// here, released as they finish, and never left waiting on a stopped worker.
@Suite struct ReactorWorkerBacklogTests {
    /// This thread's kernel id, from /proc/thread-self (a link to `<pid>/task/<tid>`).
    static func currentThreadID() -> Int {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard count > 0 else { return 0 }
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "/").last.flatMap { Int($0) } ?? 0
    }

    /// The state letter of /proc/self/task/<tid>/stat is `S` (interruptible sleep).
    static func isSleeping(threadID: Int) -> Bool {
        guard threadID > 0 else { return false }
        let fd = open("/proc/self/task/\(threadID)/stat", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0, let close = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")), close + 2 < count else { return false }
        return buffer[close + 2] == UInt8(ascii: "S")
    }

    @Test func waiterIsHeldUntilTheBacklogDrainsBelowTheLimit() {
        let worker = WorkerThread(name: "backlog-test")
        let gate = BacklogTestGate()
        let finished = ReactorTestCounter()
        // Five jobs that cannot finish until the gate opens.
        for _ in 0..<5 {
            worker.submit {
                gate.pass()
                finished.add()
            }
        }
        let released = ReactorTestCounter()
        let waiterThreadID = BacklogTestThreadID()
        var waiter = pthread_t()
        let context = Unmanaged.passRetained(ReactorTestJob {
            waiterThreadID.set(Self.currentThreadID())
            worker.waitForBacklog(below: 3)
            released.add()
        })
        pthread_create(&waiter, nil, { raw in
            Unmanaged<ReactorTestJob>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context.toOpaque())
        // Asleep in the kernel: the waiter has reached the wait (it has nothing else to block on).
        #expect(eventually(timeout: 10) { Self.isSleeping(threadID: waiterThreadID.value) })
        #expect(released.value == 0, "5 unfinished jobs, limit 3: the waiter must wait")
        gate.open()
        pthread_join(waiter, nil)
        #expect(released.value == 1)
        #expect(finished.value >= 3, "released only once fewer than 3 were unfinished")
        worker.stop()
        #expect(finished.value == 5)
        worker.waitForBacklog(below: 1)   // returns at once: nothing unfinished, and stopped
    }
}

private final class BacklogTestGate: @unchecked Sendable {
    private let lock = Mutex()
    private var isOpen = false
    func pass() { lock.withLock { while !isOpen { lock.wait() } } }
    func open() { lock.withLock { isOpen = true; lock.broadcast() } }
}

/// The kernel id of the waiter thread, set once it runs.
private final class BacklogTestThreadID: @unchecked Sendable {
    private let lock = Mutex()
    private var id = 0
    func set(_ value: Int) { lock.withLock { id = value } }
    var value: Int { lock.withLock { id } }
}
