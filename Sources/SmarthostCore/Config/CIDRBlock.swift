/// An address block such as `127.0.0.0/8` or `::1/128`, on raw network-order bytes so a
/// client address from `accept()` is tested without formatting it as text first.
///
/// IPv4-mapped IPv6 blocks (`::ffff:10.0.0.0/104`) are stored as their IPv4 block, and
/// IPv4-mapped client addresses are tested as IPv4: a dual-stack listener sees IPv4
/// clients as `::ffff:a.b.c.d`, and an operator's `127.0.0.0/8` must still match them.
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order, host bits zero.
    public let bytes: [UInt8]
    public let prefixLength: Int

    public var isIPv6: Bool { bytes.count == 16 }

    /// Why a text is not a block, for the configuration error message.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case notAnAddress
        case badPrefix(max: Int)
        /// The block has bits set past the prefix; `suggestion` is the block it likely means.
        case hostBitsSet(suggestion: String)

        public var description: String {
            switch self {
            case .notAnAddress: return "is not an IPv4 or IPv6 address block (e.g. 10.0.0.0/8, ::1/128)"
            case .badPrefix(let max): return "has a bad prefix length (0-\(max))"
            case .hostBitsSet(let suggestion): return "has host bits set (did you mean \(suggestion)?)"
            }
        }
    }

    /// Parses `addr/prefix`; a bare address is a block of one (`/32` or `/128`).
    public static func parse(_ text: String) -> Result<CIDRBlock, ParseError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = ipv4Bytes(String(parts[0])) ?? ipv6Bytes(String(parts[0])) else {
            return .failure(.notAnAddress)
        }
        let maxPrefix = address.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let value = Int(parts[1]), parts[1].allSatisfy(\.isASCII), (0...maxPrefix).contains(value) else {
                return .failure(.badPrefix(max: maxPrefix))
            }
            prefix = value
        }
        let block = CIDRBlock(unchecked: address, prefixLength: prefix)
        guard block.bytes == address else {
            return .failure(.hostBitsSet(suggestion: block.description))
        }
        return .success(block.unmappingIPv4())
    }

    /// A block from raw bytes; bits past the prefix are cleared.
    public init(unchecked address: [UInt8], prefixLength: Int) {
        precondition(address.count == 4 || address.count == 16, "CIDRBlock needs 4 or 16 bytes")
        precondition(prefixLength >= 0 && prefixLength <= address.count * 8, "prefix out of range")
        self.bytes = Self.masked(address, prefixLength)
        self.prefixLength = prefixLength
    }

    /// Tests an IPv4 address given as a host-order integer (`a.b.c.d` = a<<24 | b<<16 | c<<8 | d).
    public func contains(ipv4: UInt32) -> Bool {
        guard !isIPv6 else { return false }
        let address = [UInt8(ipv4 >> 24), UInt8((ipv4 >> 16) & 0xff), UInt8((ipv4 >> 8) & 0xff), UInt8(ipv4 & 0xff)]
        return Self.masked(address, prefixLength) == bytes
    }

    /// Tests a 16-byte IPv6 address; an IPv4-mapped one is tested as IPv4.
    public func contains(ipv6: [UInt8]) -> Bool {
        guard ipv6.count == 16 else { return false }
        if let v4 = Self.mappedIPv4(ipv6) { return contains(ipv4: v4) }
        guard isIPv6 else { return false }
        return Self.masked(ipv6, prefixLength) == bytes
    }

    /// True when a loopback client (`127.0.0.0/8`, `::1`) is in the block: blocks are
    /// nested or disjoint, so the block is inside `127.0.0.0/8` or holds all of it.
    public var includesLoopback: Bool {
        if isIPv6 { return contains(ipv6: [UInt8](repeating: 0, count: 15) + [1]) }
        return prefixLength <= 8 ? contains(ipv4: 127 << 24) : bytes[0] == 127
    }

    public var description: String {
        let address = isIPv6 ? Self.formatIPv6(bytes) : bytes.map(String.init).joined(separator: ".")
        return "\(address)/\(prefixLength)"
    }

    // MARK: - Bytes

    private static func masked(_ address: [UInt8], _ prefix: Int) -> [UInt8] {
        address.enumerated().map { index, byte in
            let bitsKept = min(max(prefix - index * 8, 0), 8)
            return bitsKept == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bitsKept))
        }
    }

    /// The IPv4 address inside `::ffff:a.b.c.d`, as a host-order integer.
    static func mappedIPv4(_ ipv6: [UInt8]) -> UInt32? {
        guard ipv6.count == 16, ipv6[0..<10].allSatisfy({ $0 == 0 }), ipv6[10] == 0xff, ipv6[11] == 0xff else {
            return nil
        }
        return ipv6[12...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// `::ffff:10.0.0.0/104` → `10.0.0.0/8`, so it matches IPv4 clients (see the type comment).
    private func unmappingIPv4() -> CIDRBlock {
        guard isIPv6, prefixLength >= 96, Self.mappedIPv4(bytes) != nil else { return self }
        return CIDRBlock(unchecked: Array(bytes[12...]), prefixLength: prefixLength - 96)
    }
}

// MARK: - Address literals

extension CIDRBlock {
    /// `192.0.2.1` → 4 bytes; strict dotted quad (no leading zeros, which some parsers read as octal).
    public static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(part.count > 1 && part.first == "0"), let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    /// `2001:db8::1`, `::`, `::ffff:192.0.2.1` → 16 bytes (RFC 4291 §2.2 text forms).
    /// Zone ids (`fe80::1%eth0`) are refused: a relay's allow list names networks, not links.
    public static func ipv6Bytes(_ text: String) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2 else { return nil }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// Colon-separated hex groups, the last of which may be a dotted IPv4 address.
    private static func groups(_ text: String) -> [UInt8]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var out: [UInt8] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, part.contains("."), let v4 = ipv4Bytes(String(part)) {
                out += v4
            } else {
                guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit), part.allSatisfy(\.isASCII),
                      let value = UInt16(part, radix: 16) else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xff)]
            }
        }
        return out.count <= 16 ? out : nil
    }

    /// RFC 5952 canonical text: lower case, the longest run of zero groups as `::`.
    static func formatIPv6(_ bytes: [UInt8]) -> String {
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var best = (start: -1, length: 0), run = (start: -1, length: 0)
        for (index, group) in groups.enumerated() {
            if group == 0 {
                run = run.start < 0 ? (index, 1) : (run.start, run.length + 1)
                if run.length > best.length { best = run }
            } else {
                run = (-1, 0)
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.length >= 2 else { return hex.joined(separator: ":") }
        let left = hex[..<best.start].joined(separator: ":")
        let right = hex[(best.start + best.length)...].joined(separator: ":")
        return left + "::" + right
    }
}
