#if canImport(Glibc)
import Glibc
import CLinuxShim
#endif

/// `sendmail -bs`: the caller speaks SMTP on our stdin/stdout (Symfony Mailer's and
/// Laravel's default transport). Postfix runs its smtpd there; we carry the bytes both
/// ways to the relay's listener unchanged, so the caller gets the relay's own dialogue —
/// its limits, its bare-LF handling, its `250 … queued as` — and nothing is parsed twice.
/// When the relay cannot be reached the caller still hears SMTP: a `421` greeting.
public enum SMTPStdioBridge {
    /// Returns when the relay closes the connection (after QUIT, or on error).
    /// The first of `targets` that accepts the connection (a few seconds each,
    /// `SMTPSubmission.Timeouts`) carries the dialogue.
    public static func run(targets: [SubmissionTarget], input: Int32 = 0, output: Int32 = 1,
                           timeoutSeconds: Int = 600) throws(SubmissionFailure) {
        var opened: SubmissionConnection?
        var firstFailure: SubmissionFailure?
        for target in targets where opened == nil {
            do throws(SubmissionFailure) {
                opened = try SubmissionConnection.open(target, timeoutSeconds: SMTPSubmission.Timeouts().connect)
            } catch {
                firstFailure = firstFailure ?? error
            }
        }
        guard let connection = opened else {
            let error = firstFailure ?? .tempfail("nowhere to submit")
            SubmissionIO.writeAll(output, Array("421 4.3.0 \(error.reason)\r\n".utf8))
            throw error
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(connection.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        pump(socket: connection.fd, input: input, output: output, timeoutSeconds: timeoutSeconds)
    }

    /// Copies input → socket and socket → output until the socket's side ends. EOF on
    /// input half-closes the socket, so the relay still answers what was sent before it.
    static func pump(socket: Int32, input: Int32, output: Int32, timeoutSeconds: Int) {
        var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0), pollfd(fd: input, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let ready = poll(&fds, nfds_t(fds.count), Int32(timeoutSeconds * 1000))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return }   // error or idle past the timeout
            if fds[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0, SubmissionIO.writeAll(output, buffer[0..<n]) else { return }
            }
            if fds[1].fd >= 0 && fds[1].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    shutdown(socket, Int32(SHUT_WR))
                    fds[1].fd = -1   // poll ignores negative descriptors
                } else if !sendAll(socket, buffer[0..<n]) {
                    return
                }
            }
        }
    }

    private static func sendAll(_ socket: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var rest = bytes
        while !rest.isEmpty {
            let n = rest.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            rest = rest.dropFirst(n)
        }
        return true
    }
}
