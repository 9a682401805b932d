import Foundation
@testable import SmarthostCore

/// An event loop running on its own thread; `stop` runs `cleanup` on the loop, then
/// stops it and waits until the thread has left `run()`.
final class ControlLoopThread: @unchecked Sendable {
    let loop: EventLoop
    private let finished = DispatchSemaphore(value: 0)

    init() throws {
        loop = try EventLoop()
    }

    func start() {
        let thread = Thread { [loop, finished] in
            loop.run()
            finished.signal()
        }
        thread.start()
    }

    /// Runs `body` on the loop thread and waits for its result.
    /// Tests hand loop-only objects across here; the loop is the only thread using them.
    func sync<T>(_ body: @escaping () -> T) -> T {
        let box = ControlBox<T>()
        let work = ControlUnchecked(body)
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            box.value = work.value()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 10)
        return box.value!
    }

    func stop(_ cleanup: @escaping () -> Void = {}) {
        let work = ControlUnchecked(cleanup)
        loop.execute { [loop] in
            work.value()
            loop.stop()
        }
        _ = finished.wait(timeout: .now() + 10)
    }
}

final class ControlBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A short socket path: `sun_path` holds 107 bytes, and temp dirs can be long.
func controlSocketPath() -> String {
    "/tmp/shctl-\(UUID().uuidString.prefix(8)).sock"
}

/// A `ControlQueue` standing in for the scheduler: states set by the test.
final class FakeControlQueue: ControlQueue, @unchecked Sendable {
    var states: [SpoolID: ControlQueueState] = [:]
    var enqueued: [SpoolEnvelope] = []
    var flushed: [SpoolID?] = []
    var forgotten: [SpoolID] = []

    func controlState(of id: SpoolID) -> ControlQueueState { states[id] ?? .unknown }

    func enqueue(_ envelope: SpoolEnvelope) {
        enqueued.append(envelope)
        states[envelope.id] = .waiting
    }

    func flush(id: SpoolID?) { flushed.append(id) }

    func forget(id: SpoolID) {
        guard states[id] == .waiting else { return }
        states[id] = nil
        forgotten.append(id)
    }

    var controlCounts: ControlStatus {
        ControlStatus(queued: states.count, deferred: 1, inFlight: states.values.filter { $0 == .inFlight }.count,
                      delivered: 7, failed: 2)
    }

    var routesDown: [ControlRouteDown] = []
    var controlRoutesDown: [ControlRouteDown] { routesDown }
    var routesSlowed: [ControlRouteSlowed] = []
    var controlRoutesSlowed: [ControlRouteSlowed] { routesSlowed }
    var heldIDs: Set<SpoolID> = []
    func setHeld(_ id: SpoolID, _ held: Bool) -> Bool {
        guard states[id] == .waiting else { return false }
        if held { heldIDs.insert(id) } else { heldIDs.remove(id) }
        return true
    }
}

struct ControlUnchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
