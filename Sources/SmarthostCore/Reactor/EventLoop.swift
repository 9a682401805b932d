import CLinuxShim
import Glibc

/// Readiness the loop reports to a handler.
public struct IOEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = IOEvents(rawValue: 1)
    public static let writable = IOEvents(rawValue: 2)
    /// Error or hang-up: the handler should read to learn why, then close.
    public static let hangup = IOEvents(rawValue: 4)
}

/// What wants to hear about an fd. Called on the loop thread only.
public protocol IOHandler: AnyObject {
    func handle(_ events: IOEvents)
}

/// Identifies one registration. The id travels in `epoll_data.u64`, so an event that was
/// already queued for an fd that has since been closed and reused is recognised as stale
/// and dropped (the fd number alone cannot tell).
public struct RegistrationID: Hashable, Sendable {
    let raw: UInt64
}

/// The reactor: one thread owns every socket, every timer and all TLS state; other threads
/// reach it only through `execute`, which queues a closure and pokes an eventfd.
/// Modelled on redis `ae.c`: small enough to read in one sitting.
public final class EventLoop: @unchecked Sendable {
    private struct Registration {
        let fd: Int32
        let handler: IOHandler
        var interest: IOEvents
        /// Taken out of the epoll set by `park`, put back by the next non-empty interest.
        var parked = false
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private var signalFD: Int32 = -1
    private var registrations: [UInt64: Registration] = [:]
    private var nextRegistration: UInt64 = 16
    private var timers = TimerQueue()
    private var running = false
    private var events = [epoll_event](repeating: epoll_event(), count: 256)

    private let pendingLock = Mutex()
    private var pendingWork: [() -> Void] = []

    private var signalHandler: ((Int32) -> Void)?
    private static let wakeToken: UInt64 = 1
    private static let signalToken: UInt64 = 2

    /// Reusable read buffer: every handler reads into this, so reading allocates nothing.
    public let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    public init() throws(SystemError) {
        epollFD = try Syscall.epollCreate()
        do {
            wakeFD = try Syscall.eventfdCreate()
        } catch {
            Syscall.close(epollFD)
            throw error
        }
        do {
            try Syscall.epollControl(epollFD, EPOLL_CTL_ADD, fd: wakeFD, events: EPOLLIN.rawValue, data: Self.wakeToken)
        } catch {
            Syscall.close(epollFD)
            Syscall.close(wakeFD)
            throw error
        }
    }

    deinit {
        readBuffer.deallocate()
        Syscall.close(epollFD)
        Syscall.close(wakeFD)
        if signalFD >= 0 { Syscall.close(signalFD) }
    }

    // MARK: signals

    /// Delivers `signals` on the loop through a signalfd. The calling thread must block them
    /// already (`ProcessSignals.blockInThisThread()`, before any thread started): a thread
    /// started earlier with them open would take them with their default action.
    public func handleSignals(_ signals: [Int32], _ handler: @escaping (Int32) -> Void) throws(SystemError) {
        assert(ProcessSignals.blockedInThisThread(signals), "block the signals before the first thread starts")
        let fd = try Syscall.signalfdCreate(signals)
        do {
            try Syscall.epollControl(epollFD, EPOLL_CTL_ADD, fd: fd, events: EPOLLIN.rawValue, data: Self.signalToken)
        } catch {
            Syscall.close(fd)
            throw error
        }
        signalFD = fd
        signalHandler = handler
    }

    // MARK: registrations

    public func register(fd: Int32, interest: IOEvents, handler: IOHandler) throws(SystemError) -> RegistrationID {
        let id = nextRegistration
        nextRegistration &+= 1
        try Syscall.epollControl(epollFD, EPOLL_CTL_ADD, fd: fd, events: Self.epollMask(interest), data: id)
        registrations[id] = Registration(fd: fd, handler: handler, interest: interest)
        return RegistrationID(raw: id)
    }

    /// Changes what the loop watches for; a no-op when unchanged, so callers can call it freely.
    /// Throws when the kernel refuses (ENOMEM, or ENOSPC re-adding a parked fd past
    /// `max_user_watches`): the registration is left as it was and the owner should close.
    public func setInterest(_ id: RegistrationID, _ interest: IOEvents) throws(SystemError) {
        guard var registration = registrations[id.raw], registration.interest != interest else { return }
        let mask = Self.epollMask(interest)
        if registration.parked {
            guard !interest.isEmpty else { return }
            try Syscall.epollControl(epollFD, EPOLL_CTL_ADD, fd: registration.fd, events: mask, data: id.raw)
            registration.parked = false
        } else {
            try Syscall.epollControl(epollFD, EPOLL_CTL_MOD, fd: registration.fd, events: mask, data: id.raw)
        }
        registration.interest = interest
        registrations[id.raw] = registration
    }

    /// Stops all reports for the fd until `setInterest` asks for something again. For a
    /// socket that hung up while its owner is not reading: epoll reports EPOLLHUP and
    /// EPOLLERR whatever the mask, so leaving it in the set would spin the loop for as long
    /// as the owner waits (a commit can wait a disk stall long). Level-triggered, the hang-up
    /// is reported again once the fd is back in the set.
    public func park(_ id: RegistrationID) throws(SystemError) {
        guard var registration = registrations[id.raw], !registration.parked else { return }
        try Syscall.epollDelete(epollFD, fd: registration.fd)
        registration.parked = true
        registration.interest = []
        registrations[id.raw] = registration
    }

    func isParked(_ id: RegistrationID) -> Bool {
        registrations[id.raw]?.parked ?? false
    }

    public func interest(of id: RegistrationID) -> IOEvents? {
        registrations[id.raw]?.interest
    }

    /// Forgets the registration; the caller still owns and closes the fd.
    public func unregister(_ id: RegistrationID) {
        guard let registration = registrations.removeValue(forKey: id.raw), !registration.parked else { return }
        // Fails only for an fd closed before its registration was dropped (EBADF/ENOENT):
        // our bug, and closing took it out of the set anyway.
        do { try Syscall.epollDelete(epollFD, fd: registration.fd) } catch { assertionFailure("\(error)") }
    }

    /// For a caller that closes the fd right after: closing removes it from the epoll set
    /// (the relay never duplicates its sockets, and nothing forks), so EPOLL_CTL_DEL would
    /// be one more syscall per connection for nothing. Events already returned for it in
    /// this batch are dropped by the registration lookup.
    public func unregisterClosing(_ id: RegistrationID) {
        registrations.removeValue(forKey: id.raw)
    }

    public var registrationCount: Int { registrations.count }

    /// Socket events handed to handlers so far: lets tests see a loop that spins.
    private(set) var ioEventsDispatched = 0

    private static func epollMask(_ interest: IOEvents) -> UInt32 {
        var mask: UInt32 = EPOLLRDHUP.rawValue
        if interest.contains(.readable) { mask |= EPOLLIN.rawValue }
        if interest.contains(.writable) { mask |= EPOLLOUT.rawValue }
        return mask
    }

    // MARK: timers

    @discardableResult
    public func schedule(afterMilliseconds delay: Int64, _ action: @escaping () -> Void) -> TimerID {
        timers.schedule(at: MonotonicClock.nowMilliseconds() + delay, action)
    }

    public func cancel(_ timer: TimerID?) {
        if let timer { timers.cancel(timer) }
    }

    // MARK: cross-thread

    /// The only way for another thread to touch loop-owned state: `work` runs on the loop thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        // Only the first job of a batch wakes the loop: it drains the eventfd first and then
        // takes every queued job at once, so later ones ride on that wake-up (a committer
        // batch's completions used to cost one eventfd write each).
        let first = pendingLock.withLock { () -> Bool in
            pendingWork.append(work)
            return pendingWork.count == 1
        }
        // Fails only with EBADF (a loop used after deinit): our bug.
        if first { try! Syscall.eventfdSignal(wakeFD) }
    }

    // MARK: running

    /// Runs until `stop()`; returns after the current iteration finishes.
    public func run() {
        running = true
        while running {
            runOnce()
        }
    }

    public func stop() {
        running = false
    }

    func runOnce() {
        let timeout = timers.timeoutMilliseconds(now: MonotonicClock.nowMilliseconds())
        let count: Int
        do {
            count = try events.withUnsafeMutableBufferPointer { (buffer) throws(SystemError) in
                try Syscall.epollWait(epollFD, into: buffer, timeoutMilliseconds: timeout)
            }
        } catch {
            // EBADF/EFAULT/EINVAL: a broken loop is our bug, not something to spin on.
            preconditionFailure("\(error)")
        }
        for index in 0..<count {
            dispatch(events[index])
        }
        runExpiredTimers()
    }

    /// One at a time: an action can cancel another timer of the same batch, which must then
    /// not run. Timers the actions schedule wait for the next turn.
    private func runExpiredTimers() {
        let now = MonotonicClock.nowMilliseconds()
        let batchEnd = timers.nextTimerID
        while let action = timers.popExpired(now: now, scheduledBefore: batchEnd) {
            action()
        }
    }

    private func dispatch(_ event: epoll_event) {
        switch event.data.u64 {
        case Self.wakeToken:
            try? Syscall.eventfdDrain(wakeFD)
            runPendingWork()
        case Self.signalToken:
            drainSignals()
        default:
            // A registration removed earlier in this batch: its events are stale.
            guard let registration = registrations[event.data.u64] else { return }
            ioEventsDispatched &+= 1
            var ready: IOEvents = []
            if event.events & EPOLLIN.rawValue != 0 { ready.insert(.readable) }
            if event.events & EPOLLOUT.rawValue != 0 { ready.insert(.writable) }
            if event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 { ready.insert(.hangup) }
            registration.handler.handle(ready)
        }
    }

    private func runPendingWork() {
        let work = pendingLock.withLock { () -> [() -> Void] in
            let taken = pendingWork
            pendingWork.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item() }
    }

    private func drainSignals() {
        while let signal = try? Syscall.signalfdRead(signalFD) {
            signalHandler?(signal)
        }
    }
}
