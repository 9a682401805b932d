/// Word-at-a-time scans over message content, for the loops that look at every octet of
/// every message: the DATA decoder and the upstream encoder look for the next line break
/// or NUL, delivery asks whether a message needs 8BITMIME. Eight octets are tested per
/// step with the classic "has a zero byte" bit trick (a byte-wise loop was 4–5 % of the
/// relay's CPU at 100 KiB each). Little-endian only, which is every platform the relay
/// builds for: the lowest flagged byte is the first match.
enum OctetScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Flags (high bit of the byte) the bytes of `word` that are zero. Bits above the
    /// first flagged byte may be false positives; the first one never is.
    @inline(__always)
    private static func zeroBytes(_ word: UInt64) -> UInt64 {
        (word &- ones) & ~word & highs
    }

    /// Index of the first CR, LF or NUL in `buffer[start..<end]`, or `end`.
    @inline(__always)
    static func firstLineBreakOrNUL(in buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
        guard let base = buffer.baseAddress else { return end }
        let raw = UnsafeRawPointer(base)
        var index = start
        while index + 8 <= end {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let found = zeroBytes(word) | zeroBytes(word ^ (ones &* 13)) | zeroBytes(word ^ (ones &* 10))
            if found != 0 { return index + found.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < end {
            let byte = buffer[index]
            if byte == 13 || byte == 10 || byte == 0 { return index }
            index += 1
        }
        return end
    }

    /// Whether any octet has its high bit set (the content needs 8BITMIME).
    static func containsHighBit(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var index = 0
            var any: UInt64 = 0
            while index + 8 <= raw.count {
                any |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                index += 8
                // Checked every 512 bytes: an early 8-bit octet ends the scan soon.
                if index & 511 == 0 && any & highs != 0 { return true }
            }
            if any & highs != 0 { return true }
            while index < raw.count {
                if raw[index] >= 0x80 { return true }
                index += 1
            }
            return false
        }
    }
}
