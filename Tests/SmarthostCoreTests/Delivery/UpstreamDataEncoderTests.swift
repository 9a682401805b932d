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
}
