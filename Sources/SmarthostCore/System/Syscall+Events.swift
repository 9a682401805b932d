import CLinuxShim
import Glibc

/// The reactor's kernel objects — epoll, eventfd, signalfd — each call checked and retrying
/// EINTR through `syscall(blocking:)`, so `EventLoop` reads as redis `ae.c` and never errno.
extension Syscall {
    static func epollCreate() throws(SystemError) -> Int32 {
        try blocking("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
    }

    /// EPOLL_CTL_ADD or _MOD with the registration id in `epoll_data.u64`.
    static func epollControl(_ epollFD: Int32, _ operation: Int32, fd: Int32, events: UInt32, data: UInt64) throws(SystemError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        _ = try blocking(operation == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : "epoll_ctl(MOD)") {
            epoll_ctl(epollFD, operation, fd, &event)
        }
    }

    static func epollDelete(_ epollFD: Int32, fd: Int32) throws(SystemError) {
        _ = try blocking("epoll_ctl(DEL)") { epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
    }

    /// Waits up to `timeoutMilliseconds` (-1: no limit); a signal ends the wait early with
    /// no events rather than being retried, so the caller's timers are looked at again.
    static func epollWait(_ epollFD: Int32, into events: UnsafeMutableBufferPointer<epoll_event>,
                          timeoutMilliseconds: Int32) throws(SystemError) -> Int {
        let count = epoll_wait(epollFD, events.baseAddress, Int32(events.count), timeoutMilliseconds)
        if count >= 0 { return Int(count) }
        if errno == EINTR { return 0 }
        throw SystemError("epoll_wait")
    }

    static func eventfdCreate() throws(SystemError) -> Int32 {
        try blocking("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    /// Adds one to the counter. EAGAIN means it is saturated: the loop is already due to wake.
    static func eventfdSignal(_ fd: Int32) throws(SystemError) {
        var one: UInt64 = 1
        _ = try syscall("write(eventfd)", blocking: false) { Glibc.write(fd, &one, MemoryLayout<UInt64>.size) }
    }

    /// Resets the counter; an empty one (EAGAIN) is already reset.
    static func eventfdDrain(_ fd: Int32) throws(SystemError) {
        var value: UInt64 = 0
        _ = try syscall("read(eventfd)", blocking: false) { Glibc.read(fd, &value, MemoryLayout<UInt64>.size) }
    }

    /// Blocks `signals` in the calling thread and returns a non-blocking signalfd for them.
    static func signalfdCreate(_ signals: [Int32]) throws(SystemError) -> Int32 {
        var set = signalSet(signals)
        let masked = pthread_sigmask(SIG_BLOCK, &set, nil)
        guard masked == 0 else { throw SystemError("pthread_sigmask", errno: masked) }
        return try blocking("signalfd") { signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) }
    }

    /// The next pending signal's number, nil when none is pending.
    static func signalfdRead(_ fd: Int32) throws(SystemError) -> Int32? {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        guard case .done(let count) = try syscall("read(signalfd)", blocking: false, { Glibc.read(fd, &info, size) }) else {
            return nil
        }
        guard count == size else { throw SystemError("read(signalfd)", errno: EIO) }
        return Int32(bitPattern: info.ssi_signo)
    }

    static func signalSet(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }
}
