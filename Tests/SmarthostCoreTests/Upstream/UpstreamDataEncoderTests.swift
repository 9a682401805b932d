import Testing
@testable import SmarthostCore

@Suite struct UpstreamDataEncoderTests {
    private func encode(_ text: String) -> String {
        String(decoding: UpstreamDataEncoder.encode(Array(text.utf8)), as: UTF8.self)
    }

    @Test func canonicalMessageGetsTheTerminator() {
        #expect(encode("Subject: x\r\n\r\nhello\r\n") == "Subject: x\r\n\r\nhello\r\n.\r\n")
    }

    @Test func missingFinalLineEndIsAdded() {
        #expect(encode("Subject: x\r\n\r\nhello") == "Subject: x\r\n\r\nhello\r\n.\r\n")
    }

    @Test func emptyMessage() {
        #expect(encode("") == ".\r\n")
    }

    @Test func dotStuffing() {
        #expect(encode(".\r\n..x\r\na.b\r\n.") == "..\r\n...x\r\na.b\r\n..\r\n.\r\n")
    }

    @Test func terminatorInsideTheContentIsStuffed() {
        #expect(encode("a\r\n.\r\nMAIL FROM:<evil>\r\n") == "a\r\n..\r\nMAIL FROM:<evil>\r\n.\r\n")
    }

    @Test func bareLFAndBareCRBecomeCRLF() {
        #expect(encode("a\nb\rc\r\n\n.d\r") == "a\r\nb\r\nc\r\n\r\n..d\r\n.\r\n")
    }

    @Test func smugglingSequencesAreNeutralised() {
        // "\n.\n" and "\r.\r" would end DATA early on a lenient server.
        #expect(encode("x\n.\ny\r.\rz") == "x\r\n..\r\ny\r\n..\r\nz\r\n.\r\n")
    }

    @Test func nulIsRemoved() {
        #expect(UpstreamDataEncoder.encode([65, 0, 66, 13, 10]) == Array("AB\r\n.\r\n".utf8))
    }

    @Test func longLinesAreSplitAt998() {
        let line = String(repeating: "x", count: 2000)
        let lines = encode(line).split(separator: "\r\n", omittingEmptySubsequences: false)
        #expect(lines.map(\.count) == [998, 998, 4, 1, 0])
    }

    @Test func splitLinesAreDotStuffedAndStuffingDoesNotCount() {
        // RFC 5321 §4.5.3.1.6: the limit does not count the dot added for transparency.
        let line = "." + String(repeating: "x", count: 996) + ".y"
        let lines = encode(line).split(separator: "\r\n", omittingEmptySubsequences: false)
        #expect(lines.map(String.init) == [".." + String(repeating: "x", count: 996) + ".", "y", ".", ""])
    }

    /// Found by the `data` fuzz target: a legal 998-octet line starting with a dot
    /// (999 octets on the wire when it came in) was split in two on the way out.
    @Test func fullLengthLineStartingWithADotIsNotSplit() {
        let line = "." + String(repeating: "y", count: 997) + "\r\n"
        #expect(encode(line) == "." + line + ".\r\n")
    }

    /// The encoder copies runs of ordinary octets at once; this one-octet-at-a-time model
    /// states the rules plainly, and both must agree on any input (seeded, reproducible).
    @Test func agreesWithTheOctetAtATimeModelOnRandomInput() {
        var rng = SplitMix64(seed: 0x5EED)
        let alphabet: [UInt8] = [0, 10, 13, UInt8(ascii: "."), UInt8(ascii: "a"), UInt8(ascii: "b"), 0xC3, 0x20]
        for round in 0..<400 {
            let count = Int(rng.next() % 3_000)
            // Long runs of one octet now and then, so lines cross the 998 limit.
            var input: [UInt8] = []
            while input.count < count {
                let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                let run = rng.next() % 8 == 0 ? Int(rng.next() % 1_200) : 1
                input += Array(repeating: byte, count: run)
            }
            #expect(UpstreamDataEncoder.encode(input) == Self.model(input), "round \(round)")
        }
    }

    static func model(_ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var lineLength = 0
        var previousWasCR = false
        func endLine() { out += [13, 10]; lineLength = 0 }
        for byte in content {
            if byte == 0 { continue }
            if byte == 13 { endLine(); previousWasCR = true; continue }
            if byte == 10 {
                if !previousWasCR { endLine() }
            } else {
                if lineLength == UpstreamDataEncoder.maxLineLength { endLine() }
                if lineLength == 0 && byte == UInt8(ascii: ".") { out.append(byte) }
                out.append(byte)
                lineLength += 1
            }
            previousWasCR = false
        }
        if lineLength > 0 { endLine() }
        return out + [UInt8(ascii: "."), 13, 10]
    }
}

/// A small seeded generator, so a failing round can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
