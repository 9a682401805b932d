import Testing
@testable import SmarthostCore

/// The word-at-a-time scans against byte-at-a-time ones, on random content where the
/// interesting octets are rare, common, at every alignment and at the ends of the range.
@Suite struct OctetScanTests {
    private static func naiveFirst(_ bytes: [UInt8], from start: Int, to end: Int) -> Int {
        var index = start
        while index < end {
            if bytes[index] == 13 || bytes[index] == 10 || bytes[index] == 0 { return index }
            index += 1
        }
        return end
    }

    /// Mostly printable ASCII and 8-bit octets (and 0x8D / 0x8A / 0x0C / 0x0E, one bit away
    /// from the stop bytes); stop bytes at the given rate per 1 000.
    private static func content(_ count: Int, stopsPerMille: UInt64, _ generator: inout SplitMix64) -> [UInt8] {
        let nearMisses: [UInt8] = [0x8D, 0x8A, 0x0C, 0x0E, 0x80, 0x01, 0xFF, 0x2E]
        let stops: [UInt8] = [13, 10, 0]
        return (0..<count).map { _ in
            let roll = generator.next() % 1000
            if roll < stopsPerMille { return stops[Int(generator.next() % 3)] }
            if roll < stopsPerMille + 50 { return nearMisses[Int(generator.next() % 8)] }
            return UInt8(truncatingIfNeeded: generator.next() % 95 + 32)
        }
    }

    @Test(arguments: [0, 1, 5, 100, 500])
    func firstLineBreakOrNULMatchesTheByteLoop(stopsPerMille: UInt64) {
        var generator = SplitMix64(seed: 0x5CA9 &+ stopsPerMille)
        for round in 0..<300 {
            let bytes = Self.content(Int(generator.next() % 300), stopsPerMille: stopsPerMille, &generator)
            let start = bytes.isEmpty ? 0 : Int(generator.next() % UInt64(bytes.count + 1))
            let end = start + Int(generator.next() % UInt64(bytes.count - start + 1))
            let fast = bytes.withUnsafeBufferPointer { OctetScan.firstLineBreakOrNUL(in: $0, from: start, to: end) }
            #expect(fast == Self.naiveFirst(bytes, from: start, to: end), "round \(round), \(start)..<\(end) of \(bytes)")
        }
    }

    @Test func everyPositionOfEachStopByteIsFound() {
        for stop: UInt8 in [13, 10, 0] {
            for length in 1...40 {
                for position in 0..<length {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = stop
                    let found = bytes.withUnsafeBufferPointer { OctetScan.firstLineBreakOrNUL(in: $0, from: 0, to: length) }
                    #expect(found == position, "byte \(stop) at \(position) of \(length)")
                }
            }
        }
        let empty: [UInt8] = []
        #expect(empty.withUnsafeBufferPointer { OctetScan.firstLineBreakOrNUL(in: $0, from: 0, to: 0) } == 0)
    }

    @Test func containsHighBitMatchesTheByteLoop() {
        var generator = SplitMix64(seed: 0x8B17)
        for length in [0, 1, 7, 8, 9, 511, 512, 513, 2_000] {
            let ascii = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next() % 128) }
            #expect(!OctetScan.containsHighBit(ascii), "all 7-bit, length \(length)")
            for position in Set([0, length / 2, length - 1]) where length > 0 {
                var eightBit = ascii
                eightBit[position] = 0x80 | UInt8(truncatingIfNeeded: generator.next())
                #expect(OctetScan.containsHighBit(eightBit), "8-bit octet at \(position) of \(length)")
            }
        }
    }
}
