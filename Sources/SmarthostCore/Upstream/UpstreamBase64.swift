/// Base64 (RFC 4648 §4, with padding) for AUTH payloads (RFC 4954) and RFC 2047
/// encoded-words. Small enough to keep rather than pull in Foundation.
enum UpstreamBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ input: some Collection<UInt8>) -> [UInt8] {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            appendGroup(group, significant: 4, to: &out)
            index += 3
        }
        switch bytes.count - index {
        case 1:
            appendGroup(UInt32(bytes[index]) << 16, significant: 2, to: &out)
        case 2:
            appendGroup(UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8, significant: 3, to: &out)
        default:
            break
        }
        return out
    }

    static func encodeString(_ input: some Collection<UInt8>) -> String {
        String(decoding: encode(input), as: UTF8.self)
    }

    /// Appends the four characters of a 24-bit group, padding with "=" past `significant`.
    private static func appendGroup(_ group: UInt32, significant: Int, to out: inout [UInt8]) {
        for position in 0..<4 {
            if position < significant {
                out.append(alphabet[Int((group >> UInt32(18 - 6 * position)) & 0x3F)])
            } else {
                out.append(UInt8(ascii: "="))
            }
        }
    }
}
