import Glibc

/// Why a control request got no answer from a daemon that is there.
public enum ControlClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The socket exists but we may not use it (run as root or the daemon's user).
    case connect(path: String, reason: String)
    case timedOut(path: String, milliseconds: Int)
    case io(path: String, reason: String)
    /// The daemon closed the connection without a reply, or sent something else.
    case badReply(path: String, text: String)

    public var description: String {
        switch self {
        case .connect(let path, let reason):
            return "cannot talk to the daemon at \(path): \(reason)"
        case .timedOut(let path, let milliseconds):
            return "the daemon at \(path) did not answer within \(milliseconds) ms; nothing was changed by this command, "
                + "but the daemon may still carry out the request"
        case .io(let path, let reason):
            return "control socket \(path): \(reason)"
        case .badReply(let path, let text):
            return "control socket \(path): unexpected answer \(text.isEmpty ? "(none)" : "'\(text)'")"
        }
    }
}

/// The `smarthost queue …` side of the control socket: blocking, bounded by a timeout.
///
/// `send` returns nil when no daemon listens (no socket file, or a stale one: ENOENT or
/// ECONNREFUSED); the caller then works on the spool directly, which the spool's flocks
/// make safe. Any other failure is thrown: a daemon that is there but slow must not be
/// bypassed, or its in-memory queue would disagree with the spool.
public struct ControlClient: Sendable {
    public let path: String
    public var timeoutMilliseconds: Int

    public init(path: String, timeoutMilliseconds: Int = 10_000) {
        self.path = path
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public init(spool: String, timeoutMilliseconds: Int = 10_000) {
        self.init(path: ControlServer.socketPath(spool: spool), timeoutMilliseconds: timeoutMilliseconds)
    }

    /// One request, one reply; nil when no daemon is running.
    public func send(_ request: ControlRequest) throws(ControlClientError) -> ControlReply? {
        let fd: Int32
        do throws(SystemError) {
            fd = try UnixSocket.connect(path: path, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            switch error.errno {
            case ENOENT, ECONNREFUSED: return nil
            case EAGAIN, ETIMEDOUT: throw .timedOut(path: path, milliseconds: timeoutMilliseconds)
            default: throw .connect(path: path, reason: error.description)
            }
        }
        defer { Syscall.close(fd) }
        try write(request.line, to: fd)
        let line = try readLine(from: fd)
        guard let reply = ControlReply.parse(line) else {
            throw .badReply(path: path, text: String(decoding: line, as: UTF8.self))
        }
        return reply
    }

    /// As `send`, asking again while the daemon answers `BUSY` (a message in delivery or
    /// changing state); returns the last reply.
    public func send(_ request: ControlRequest, busyRetries: Int, delayMilliseconds: Int = 250) throws(ControlClientError) -> ControlReply? {
        var attempt = 0
        while true {
            let reply = try send(request)
            guard let reply, reply.code == .busy, attempt < busyRetries else { return reply }
            attempt += 1
            usleep(UInt32(delayMilliseconds * 1000))
        }
    }

    private func write(_ bytes: [UInt8], to fd: Int32) throws(ControlClientError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            try failure(errno)
        }
    }

    private func readLine(from fd: Int32) throws(ControlClientError) -> [UInt8] {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count < 0 {
                try failure(errno)
                continue
            }
            line.append(contentsOf: chunk[0..<count])
            if let newline = line.firstIndex(of: UInt8(ascii: "\n")) {
                line.removeSubrange(newline...)
                break
            }
            if line.count > 64 * 1024 { break }
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }

    /// EINTR returns so the caller repeats the call; everything else is thrown.
    private func failure(_ code: Int32) throws(ControlClientError) {
        switch code {
        case EINTR: return
        case EAGAIN, EWOULDBLOCK: throw .timedOut(path: path, milliseconds: timeoutMilliseconds)
        default: throw .io(path: path, reason: SystemError("control socket", errno: code).description)
        }
    }
}
