#if canImport(Glibc)
import Glibc
import CLinuxShim
#endif

/// Where `SMTPSubmission` speaks: a socket to the relay (`SubmissionConnection`), or the
/// relay's own inbound session in memory (the maildrop pickup).
protocol SubmissionChannel: AnyObject {
    /// For messages: `127.0.0.1:25`, `unix:/run/smarthost/smtp.sock`.
    var name: String { get }
    func send(_ bytes: [UInt8]) throws(SubmissionFailure)
    /// The next reply, waiting at most `timeoutSeconds` for it.
    func readReply(timeoutSeconds: Int) throws(SubmissionFailure) -> SMTPReply
}

extension SubmissionChannel {
    func send(_ line: String) throws(SubmissionFailure) {
        try send(Array((line + "\r\n").utf8))
    }

    /// Sends a command and reads its reply.
    func command(_ line: String, timeoutSeconds: Int) throws(SubmissionFailure) -> SMTPReply {
        try send(line)
        return try readReply(timeoutSeconds: timeoutSeconds)
    }
}

/// A blocking connection to the relay's listener (TCP or the Unix socket) for `sendmail`:
/// one short-lived process, one connection, so plain blocking I/O with socket timeouts is
/// the whole story (the daemon's reactor is not involved). Every failure to reach or hear
/// the relay is EX_TEMPFAIL: nothing was accepted, the caller may try again.
final class SubmissionConnection: SubmissionChannel {
    let fd: Int32
    let target: SubmissionTarget
    private var replies = UpstreamReplyParser()
    private var receiveTimeout = 0

    private init(fd: Int32, target: SubmissionTarget) {
        self.fd = fd
        self.target = target
    }

    deinit { close(fd) }

    var name: String { target.description }

    /// Connects to the first address of `target` that answers.
    static func open(_ target: SubmissionTarget, timeoutSeconds: Int) throws(SubmissionFailure) -> SubmissionConnection {
        if let path = target.unixPath {
            do throws(SystemError) {
                let fd = try UnixSocket.connect(path: path, timeoutMilliseconds: timeoutSeconds * 1000)
                return SubmissionConnection(fd: fd, target: target)
            } catch {
                throw .tempfail("cannot connect to the relay at \(target): \(String(cString: strerror(error.errno)))")
            }
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0 else {
            throw .tempfail("cannot resolve \(target.host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = ECONNREFUSED
        var cursor = list
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = errno; continue }
            // On Linux SO_SNDTIMEO also bounds connect(2).
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                return SubmissionConnection(fd: fd, target: target)
            }
            lastError = errno
            close(fd)
        }
        throw .tempfail("cannot connect to the relay at \(target): \(String(cString: strerror(lastError)))")
    }

    func send(_ bytes: [UInt8]) throws(SubmissionFailure) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .tempfail("lost the connection to the relay at \(target): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    func readReply(timeoutSeconds: Int) throws(SubmissionFailure) -> SMTPReply {
        if timeoutSeconds != receiveTimeout {
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            receiveTimeout = timeoutSeconds
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            do {
                if let reply = try replies.nextReply() { return reply }
            } catch {
                throw .tempfail("the relay at \(target) sent something that is not SMTP: \(error)")
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { throw .tempfail("the relay at \(target) closed the connection") }
            guard n > 0 else {
                let why = errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : String(cString: strerror(errno))
                throw .tempfail("no reply from the relay at \(target): \(why)")
            }
            replies.feed(buffer[0..<n])
        }
    }
}
