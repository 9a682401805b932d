import Glibc

/// A bound, listening, non-blocking TCP or Unix-domain stream socket.
public struct ListeningSocket: Sendable {
    public let fd: Int32
    public let address: SocketAddress
    /// The socket file this process created (a Unix listener it bound itself), removed at
    /// close; nil for TCP and for a socket systemd passed, whose file is systemd's.
    public var ownedPath: String? = nil

    /// Binds and listens. IPv6 sockets are v6-only so "[::]:25" and "0.0.0.0:25" can coexist.
    public static func bind(_ address: SocketAddress, backlog: Int32 = 1024) throws(SystemError) -> ListeningSocket {
        let fd = try Syscall.socket(address.family)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if address.isIPv6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        guard bound == 0 else {
            let error = SystemError("bind \(address)")
            Syscall.close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SystemError("listen \(address)")
            Syscall.close(fd)
            throw error
        }
        return ListeningSocket(fd: fd, address: Self.localAddress(of: fd) ?? address)
    }

    /// Adopts an fd passed by systemd socket activation; it must already be listening.
    public static func adopt(fd: Int32) throws(SystemError) -> ListeningSocket {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw SystemError("fcntl") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard let address = localAddress(of: fd) else { throw SystemError("getsockname") }
        return ListeningSocket(fd: fd, address: address)
    }

    public static func localAddress(of fd: Int32) -> SocketAddress? {
        let (result, address) = SocketAddress.from { getsockname(fd, $0, $1) }
        return result == 0 ? address : nil
    }

    public enum AcceptResult {
        case accepted(fd: Int32, peer: SocketAddress)
        case wouldBlock
        /// Out of descriptors or kernel memory: accepting again now would spin, so pause.
        case exhausted(SystemError)
        /// The connection died in the backlog; just try the next one.
        case transient
    }

    public func accept() -> AcceptResult {
        do {
            guard case .done(let (fd, peer)) = try Syscall.accept(fd) else { return .wouldBlock }
            return .accepted(fd: fd, peer: peer)
        } catch {
            switch error.errno {
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .exhausted(error)
            default: return .transient
            }
        }
    }

    public func close() {
        Syscall.close(fd)
        if let ownedPath { _ = unlink(ownedPath) }
    }
}
