/// One address the relay listens on: `127.0.0.1:25`, `[::1]:25`, or a Unix socket
/// `unix:/run/smarthost/smtp.sock` (local submission where the peer's uid names the org).
/// Only address literals: resolving a name at start-up would make the listener depend on
/// DNS, and a relay that must start before the network is fully up cannot afford that.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address literal without brackets (`127.0.0.1`, `::1`); empty for a Unix socket.
    public var host: String
    public var port: UInt16
    public var isIPv6: Bool
    /// The socket file's path for a Unix-socket listener; nil for TCP.
    public var unixPath: String?

    public init(host: String, port: UInt16, isIPv6: Bool) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
    }

    public init(unixPath: String) {
        self.host = ""
        self.port = 0
        self.isIPv6 = false
        self.unixPath = unixPath
    }

    public static let unixPrefix = "unix:"
    /// `sun_path` holds 108 bytes with its terminating NUL.
    public static let maxUnixPathLength = 107

    /// A `listen:` entry: an address as `parse` reads it, or `unix:/absolute/path`.
    public static func parseListener(_ text: String) -> ListenAddress? {
        guard text.hasPrefix(unixPrefix) else { return parse(text) }
        let path = String(text.dropFirst(unixPrefix.count))
        guard path.hasPrefix("/"), path.utf8.count <= maxUnixPathLength, !path.utf8.contains(0),
              !path.hasSuffix("/") else { return nil }
        return ListenAddress(unixPath: path)
    }

    /// The address bytes in network order (4 or 16), for `bind()`.
    public var addressBytes: [UInt8] {
        guard unixPath == nil else { return [] }
        return (isIPv6 ? CIDRBlock.ipv6Bytes(host) : CIDRBlock.ipv4Bytes(host)) ?? []
    }

    /// Parses `a.b.c.d:port` or `[v6]:port`; nil when it is neither. Port 0 asks the kernel
    /// for a free port (tests and benchmarks); the bound port is logged at start.
    public static func parse(_ text: String) -> ListenAddress? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let hostPart = text[..<colon]
        let portPart = text[text.index(after: colon)...]
        guard let port = UInt16(portPart), portPart.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return nil
        }
        if hostPart.hasPrefix("["), hostPart.hasSuffix("]"), hostPart.count > 2 {
            let inner = String(hostPart.dropFirst().dropLast())
            guard CIDRBlock.ipv6Bytes(inner) != nil else { return nil }
            return ListenAddress(host: inner, port: port, isIPv6: true)
        }
        guard CIDRBlock.ipv4Bytes(String(hostPart)) != nil else { return nil }
        return ListenAddress(host: String(hostPart), port: port, isIPv6: false)
    }

    /// `127.0.0.1:25`, `[::1]:25`, `unix:/path`: the form it is written in, for logs and reports.
    public var description: String {
        if let unixPath { return Self.unixPrefix + unixPath }
        return isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
