/// One address the relay listens on: `127.0.0.1:25` or `[::1]:25`.
/// Only address literals: resolving a name at start-up would make the listener depend on
/// DNS, and a relay that must start before the network is fully up cannot afford that.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address literal without brackets (`127.0.0.1`, `::1`).
    public var host: String
    public var port: UInt16
    public var isIPv6: Bool

    public init(host: String, port: UInt16, isIPv6: Bool) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
    }

    /// The address bytes in network order (4 or 16), for `bind()`.
    public var addressBytes: [UInt8] {
        (isIPv6 ? CIDRBlock.ipv6Bytes(host) : CIDRBlock.ipv4Bytes(host)) ?? []
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

    /// `127.0.0.1:25`, `[::1]:25`: the form it is written in, for logs and reports.
    public var description: String {
        isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
