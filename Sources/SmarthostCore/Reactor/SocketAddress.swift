import Glibc

/// An IPv4, IPv6 or Unix-domain socket address, kept as the raw `sockaddr_storage` the
/// kernel uses.
public struct SocketAddress: Sendable, CustomStringConvertible {
    private var storage = sockaddr_storage()
    public private(set) var length: socklen_t = 0

    public init() {}

    /// Parses a numeric IP literal ("127.0.0.1", "::1"); host names are resolved elsewhere,
    /// off the loop thread.
    public init?(ip: String, port: UInt16) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, ip, &v4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = v4
            setStorage(&sin)
        } else if inet_pton(AF_INET6, ip, &v6) == 1 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_addr = v6
            setStorage(&sin6)
        } else {
            return nil
        }
    }

    private mutating func setStorage<T>(_ value: inout T) {
        let size = MemoryLayout<T>.size
        withUnsafeMutableBytes(of: &storage) { dest in
            withUnsafeBytes(of: &value) { src in dest.copyMemory(from: src) }
        }
        length = socklen_t(size)
    }

    public var family: Int32 { Int32(storage.ss_family) }
    public var isIPv6: Bool { family == AF_INET6 }
    public var isUnix: Bool { family == AF_UNIX }

    /// The socket file of a Unix-domain address (`getsockname` of a listener); empty for
    /// an unnamed one (every accepted peer); nil for IP addresses.
    public var unixPath: String? {
        guard isUnix else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            // sun_path follows the 2-byte family; the length excludes what the kernel did not fill.
            let end = min(Int(length), MemoryLayout<sockaddr_un>.size)
            guard end > 2 else { return "" }
            return String(decoding: raw[2..<end].prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port sit at the same offset, right after the family.
            UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
        }
    }

    /// The address bytes: 4 for IPv4, 16 for IPv6 (what access rules match on).
    public var ipBytes: [UInt8] {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET {
                return Array(raw[4..<8])
            }
            return Array(raw[8..<24])
        }
    }

    /// "127.0.0.1" or "::1".
    public var ipString: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var bytes = ipBytes
        let af = family
        let ok = bytes.withUnsafeMutableBytes { src in
            inet_ntop(af, src.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "?" }
        return String(cString: buffer)
    }

    /// "127.0.0.1:25", "[::1]:25" or "unix:/run/smarthost/smtp.sock".
    public var description: String {
        if let unixPath { return "unix:" + unixPath }
        return isIPv6 ? "[\(ipString)]:\(port)" : "\(ipString):\(port)"
    }

    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Fills an address from a kernel call such as accept4/getsockname.
    public static func from(_ fill: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> (Int32, SocketAddress) {
        var address = SocketAddress()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutableBytes(of: &address.storage) { raw in
            fill(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        address.length = length
        return (result, address)
    }
}

/// Two addresses are equal when family, address and port are: what a connect would reach.
extension SocketAddress: Equatable {
    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        lhs.family == rhs.family && lhs.port == rhs.port && lhs.ipBytes == rhs.ipBytes
    }
}
