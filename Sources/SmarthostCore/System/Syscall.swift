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
/// (typed `SpoolError`s). Every call retries EINTR; nothing above it reads errno.
enum Syscall {
    /// Runs `body` again on EINTR; EAGAIN/EWOULDBLOCK become `.wouldBlock`.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            let error = Glibc.errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(call, errno: error)
        }
    }

    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try retrying("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        // MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill the daemon.
        try retrying("send") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
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
