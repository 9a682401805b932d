import Testing
@testable import SmarthostCore

/// The spool's checksum must never change: files written by one build are verified by the next.
@Suite struct SpoolCRC32CTests {
    @Test func knownVectors() {
        // RFC 3720 (iSCSI) B.4 and the usual check value.
        #expect(SpoolCRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(SpoolCRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(SpoolCRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(SpoolCRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(SpoolCRC32C.checksum([UInt8]()) == 0)
    }

    @Test func fastPathAgreesWithTheTableInAnyChunking() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<200 {
            let bytes = (0..<Int(rng.next() % 5_000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var chunked = SpoolCRC32C()
            var index = 0
            while index < bytes.count {
                let end = min(bytes.count, index + 1 + Int(rng.next() % 97))
                chunked.update(bytes[index..<end])
                index = end
            }
            let table = bytes.withUnsafeBufferPointer {
                SpoolCRC32C.tableUpdate(0xFFFF_FFFF, $0) ^ 0xFFFF_FFFF
            }
            #expect(chunked.value == table)
            #expect(SpoolCRC32C.checksum(bytes) == table)
        }
    }
}
