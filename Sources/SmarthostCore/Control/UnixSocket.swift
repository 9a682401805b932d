import CLinuxShim
import Glibc

/// The few `AF_UNIX` calls the control socket needs: bind a listening socket at a path
/// with mode 0600, connect to one, and ask the kernel who the peer is.
public enum UnixSocket {
    /// `sun_path` holds 108 bytes including the terminating NUL.
    static let maxPathLength = 107

    /// Binds and listens at `path`, replacing a stale socket file left by a crash (never
    /// any other kind of file). The socket is non-blocking and close-on-exec; the file
    /// is given `mode` (0600: the control socket) before `listen`, so no connection is
    /// accepted while it has the mode `bind` left.
    public static func listen(path: String, mode: mode_t = 0o600, backlog: Int32 = 16) throws(SystemError) -> Int32 {
        try removeStaleSocket(path)
        let fd = try Syscall.socket(AF_UNIX)
        do throws(SystemError) {
            try withAddress(path) { address, length throws(SystemError) in
                guard Glibc.bind(fd, address, length) == 0 else { throw SystemError("bind \(path)") }
            }
            guard chmod(path, mode) == 0 else { throw SystemError("chmod \(path)") }
            guard Glibc.listen(fd, backlog) == 0 else { throw SystemError("listen \(path)") }
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    /// A blocking, close-on-exec connection to `path`. `timeoutMilliseconds` bounds the
    /// connect (Linux applies `SO_SNDTIMEO` to a full backlog), each send and each recv.
    public static func connect(path: String, timeoutMilliseconds: Int) throws(SystemError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket(AF_UNIX)") }
        do throws(SystemError) {
            var limit = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
            for option in [SO_SNDTIMEO, SO_RCVTIMEO] {
                guard setsockopt(fd, SOL_SOCKET, option, &limit, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                    throw SystemError("setsockopt(timeout)")
                }
            }
            try withAddress(path) { address, length throws(SystemError) in
                while Glibc.connect(fd, address, length) != 0 {
                    if errno == EINTR { continue }
                    throw SystemError("connect \(path)")
                }
            }
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    /// The uid of the process at the other end (`SO_PEERCRED`), or nil if unknown.
    public static func peerUID(_ fd: Int32) -> uid_t? {
        // `struct ucred` is {pid_t pid; uid_t uid; gid_t gid;} but Glibc only declares it
        // under _GNU_SOURCE, which the Swift module does not set: read it as three words.
        var credentials: (UInt32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(UInt32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12 else { return nil }
        return uid_t(credentials.1)
    }

    private static func removeStaleSocket(_ path: String) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw SystemError("\(path) exists and is not a socket; bind", errno: EEXIST)
        }
        guard unlink(path) == 0 || errno == ENOENT else { throw SystemError("unlink \(path)") }
    }

    private static func withAddress<T>(_ path: String,
                                       _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> T) throws(SystemError) -> T {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxPathLength, !bytes.contains(0) else {
            throw SystemError("socket path \(path) (longer than \(maxPathLength) bytes?)", errno: ENAMETOOLONG)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return try withUnsafePointer(to: &address) { pointer throws(SystemError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(SystemError) in
                try body(raw, length)
            }
        }
    }
}
