import Glibc

/// The SMTP listener on a Unix socket (`listen: ["unix:/run/smarthost/smtp.sock"]`): local
/// processes submit without a TCP port, and the kernel tells us each one's uid
/// (`SO_PEERCRED`), which an org's `clients: ["uid:1001", "user:robot"]` can require.
enum UnixListener {
    /// Any local user may connect and submit: the uid, not the file mode, decides which org
    /// a client may send as. To narrow who may connect at all, put the socket in a directory
    /// only some users can search (e.g. /run/smarthost 0750, group smtp).
    static let socketMode: mode_t = 0o666

    /// Binds `path`. A socket file left by a crash is replaced; a file that is not a socket
    /// is never removed, nor a socket another process still accepts on (a second relay
    /// with another spool would otherwise silently take over the first one's clients).
    static func bind(path: String, backlog: Int32 = 1024) throws(SystemError) -> ListeningSocket {
        if isAccepting(path) {
            throw SystemError("\(path) is in use by a running process; bind", errno: EADDRINUSE)
        }
        let fd = try UnixSocket.listen(path: path, mode: socketMode, backlog: backlog)
        let address = ListeningSocket.localAddress(of: fd) ?? SocketAddress()
        return ListeningSocket(fd: fd, address: address, ownedPath: path)
    }

    /// A socket file at `path` that a live listener answers on.
    private static func isAccepting(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return false }
        guard let fd = try? UnixSocket.connect(path: path, timeoutMilliseconds: 1000) else { return false }
        Syscall.close(fd)
        return true
    }
}
