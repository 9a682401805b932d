import Glibc
import CLinuxShim

/// Why a host name did not resolve, in the words `smarthost test` shows.
public struct ResolveError: Error, Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var reason: String
    public var isTemporary: Bool

    public var description: String { "DNS: cannot resolve \(host): \(reason)" }
}

/// Resolves upstream host names on a worker thread (getaddrinfo blocks) and hands the
/// addresses back to the loop. IP literals skip the thread. The order is getaddrinfo's,
/// which follows RFC 6724, so both IPv6 and IPv4 addresses are tried in a sensible order.
public final class HostResolver: @unchecked Sendable {
    private let loop: EventLoop
    private let worker = WorkerThread(name: "dns")

    public init(loop: EventLoop) {
        self.loop = loop
    }

    public func stop() {
        worker.stop()
    }

    public func resolve(host: String, port: UInt16, _ completion: @escaping (Result<[SocketAddress], ResolveError>) -> Void) {
        if let literal = SocketAddress(ip: Self.stripBrackets(host), port: port) {
            completion(.success([literal]))
            return
        }
        let reply = LoopCallback(completion)
        let loop = self.loop
        worker.submit {
            let result = Self.lookup(host: host, port: port)
            loop.execute { reply.call(result) }
        }
    }

    static func stripBrackets(_ host: String) -> String {
        if host.hasPrefix("["), host.hasSuffix("]") { return String(host.dropFirst().dropLast()) }
        return host
    }

    /// Blocking lookup; runs on the worker thread only.
    public static func lookup(host: String, port: UInt16) -> Result<[SocketAddress], ResolveError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let temporary = status == EAI_AGAIN
            return .failure(ResolveError(host: host, reason: String(cString: gai_strerror(status)), isTemporary: temporary))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let sa = entry.pointee.ai_addr {
                let (_, address) = SocketAddress.from { dest, length in
                    memcpy(dest, sa, Int(entry.pointee.ai_addrlen))
                    length.pointee = entry.pointee.ai_addrlen
                    return 0
                }
                if !addresses.contains(where: { $0.description == address.description }) { addresses.append(address) }
            }
            cursor = entry.pointee.ai_next
        }
        return .success(addresses)
    }
}
