import CLinuxShim
import Glibc

/// The outcome of a non-blocking I/O call: `EAGAIN` is a value, not an error, and `EINTR`
/// never escapes (SwiftNIO's `System.swift` makes the same split).
public enum IOResult<T> {
    case done(T)
    case wouldBlock
}

/// An errno from a system call that failed for real, with the call's name for the log.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno)))"
    }
}

/// The one system-call layer: sockets here (EAGAIN a value), files in `Syscall+Files.swift`
/// (typed `SpoolError`s), epoll/eventfd/signalfd in `Syscall+Events.swift`. Every call
/// retries EINTR; nothing above it reads errno.
enum Syscall {
    /// SwiftNIO's `syscall(blocking:)`: runs `body` again on EINTR; for a non-blocking call
    /// (`blocking: false`) EAGAIN/EWOULDBLOCK become `.wouldBlock`; every other failure,
    /// and EAGAIN from a call that should have waited, throws with errno and the call's name.
    @inline(__always)
    static func syscall<T: BinaryInteger>(_ call: @autoclosure () -> String, blocking: Bool,
                                          _ body: () -> T) throws(SystemError) -> IOResult<T> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            let error = Glibc.errno
            if error == EINTR { continue }
            if !blocking && (error == EAGAIN || error == EWOULDBLOCK) { return .wouldBlock }
            throw SystemError(call(), errno: error)
        }
    }

    /// A call that waits (or cannot block): its result, or the failure thrown.
    @inline(__always)
    static func blocking<T: BinaryInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
        guard case .done(let result) = try syscall(call(), blocking: true, body) else {
            preconditionFailure("a blocking call cannot report wouldBlock")
        }
        return result
    }

    /// Runs `body` again on EINTR and returns its result with the errno it left (0 when it
    /// succeeded): for the file calls, which turn errno into a `SpoolError` themselves.
    @inline(__always)
    static func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> (result: T, errno: Int32) {
        while true {
            let result = body()
            if result >= 0 { return (result, 0) }
            let error = Glibc.errno
            if error != EINTR { return (result, error) }
        }
    }

    /// A non-blocking, close-on-exec socket.
    static func socket(_ domain: Int32, _ type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(SystemError) -> Int32 {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        return try blocking("socket") { Glibc.socket(domain, type | flags, 0) }
    }

    /// accept4: the connection comes non-blocking and close-on-exec; EAGAIN is `.wouldBlock`.
    static func accept(_ fd: Int32) throws(SystemError) -> IOResult<(fd: Int32, peer: SocketAddress)> {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        var peer = SocketAddress()
        let result = try syscall("accept4", blocking: false) { () -> Int32 in
            let (client, address) = SocketAddress.from { shim_accept4(fd, $0, $1, flags) }
            peer = address
            return client
        }
        guard case .done(let client) = result else { return .wouldBlock }
        return .done((client, peer))
    }

    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall("read", blocking: false) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        // MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill the daemon.
        try syscall("send", blocking: false) { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    static func close(_ fd: Int32) {
        // Linux closes the fd even when close returns EINTR: never retry.
        _ = Glibc.close(fd)
    }

    /// Sleeps the whole interval, resuming after a signal.
    static func sleep(milliseconds: Int) {
        var request = Glibc.timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = Glibc.timespec()
        while Glibc.nanosleep(&request, &remaining) != 0 && Glibc.errno == EINTR { request = remaining }
    }
}
