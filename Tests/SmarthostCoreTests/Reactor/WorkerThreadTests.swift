import Glibc
import Testing
@testable import SmarthostCore

/// `WorkerThread.waitForBacklog`: another thread is held while too many jobs are unfinished
/// here, released as they finish, and never left waiting on a stopped worker.
@Suite struct ReactorWorkerBacklogTests {
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
        var waiter = pthread_t()
        let context = Unmanaged.passRetained(ReactorTestJob {
            worker.waitForBacklog(below: 3)
            released.add()
        })
        pthread_create(&waiter, nil, { raw in
            Unmanaged<ReactorTestJob>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context.toOpaque())
        usleep(50_000)
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
