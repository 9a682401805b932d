import Testing
@testable import SmarthostCore

@Suite struct SMTPLineFramerTests {
    /// Events rendered as text so expectations read like the wire.
    private func drain(_ framer: inout LineFramer) -> [String] {
        var events: [String] = []
        while let event = framer.nextEvent() {
            switch event {
            case .line(let line): events.append("line:" + String(decoding: line, as: UTF8.self))
            case .tooLong: events.append("tooLong")
            case .badLineEnding: events.append("bad")
            }
        }
        return events
    }

    private func frame(_ chunks: [String], bareLineFeed: BareLineFeedPolicy = .reject) -> [String] {
        var framer = LineFramer(bareLineFeed: bareLineFeed)
        var events: [String] = []
        for chunk in chunks {
            framer.append(Array(chunk.utf8))
            events += drain(&framer)
        }
        return events
    }

    /// All ways to cut `text` in two.
    private func everySplit(_ text: String) -> [[String]] {
        let bytes = Array(text.utf8)
        return (0...bytes.count).map { cut in
            [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
        }
    }

    @Test func framesCRLFLinesAndKeepsPartialLine() {
        var framer = LineFramer()
        framer.append(Array("EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT".utf8))
        #expect(drain(&framer) == ["line:EHLO a", "line:MAIL FROM:<a@b>"])
        #expect(framer.bufferedCount == 4)
        framer.append(Array(" TO:<c@d>\r\n".utf8))
        #expect(drain(&framer) == ["line:RCPT TO:<c@d>"])
        #expect(framer.bufferedCount == 0)
    }

    @Test func sameEventsAtEverySplitPoint() {
        let text = "NOOP\r\nNO\rOP\r\nRSET\nQUIT\r\n\u{0}X\r\nHELP\r\n"
        let expected = ["line:NOOP", "bad", "bad", "line:QUIT", "bad", "line:HELP"]
        #expect(frame([text]) == expected)
        for chunks in everySplit(text) {
            #expect(frame(chunks) == expected, "split \(chunks)")
        }
    }

    @Test func bareLineFeedEndsALineWhenNormalizing() {
        let text = "NOOP\r\nNO\rOP\r\nRSET\nQUIT\r\n\u{0}X\nHELP\n\n"
        let expected = ["line:NOOP", "bad", "line:RSET", "line:QUIT", "bad", "line:HELP", "line:"]
        #expect(frame([text], bareLineFeed: .normalize) == expected)
        for chunks in everySplit(text) {
            #expect(frame(chunks, bareLineFeed: .normalize) == expected, "split \(chunks)")
        }
        // A bare CR is still refused, also right before an LF that would end the line.
        #expect(frame(["NOOP\r\r\n", "RSET\n"], bareLineFeed: .normalize) == ["bad", "line:RSET"])
    }

    @Test func bareLineFeedLineCountsTheCRLFItStandsFor() {
        // 510 octets + LF is a 512-octet line once normalized; 511 + LF is over.
        let at = String(repeating: "x", count: 510)
        #expect(frame([at + "\n"], bareLineFeed: .normalize) == ["line:" + at])
        #expect(frame([at + "x\nNOOP\n"], bareLineFeed: .normalize) == ["tooLong", "line:NOOP"])
    }

    @Test func defaultPolicyIsNormalize() {
        var framer = LineFramer()
        framer.append(Array("NOOP\n".utf8))
        #expect(drain(&framer) == ["line:NOOP"])
    }

    @Test func lineOf511And512OctetsIsALine() {
        for total in [511, 512] {
            let content = String(repeating: "x", count: total - 2)
            #expect(frame([content + "\r\n"]) == ["line:" + content])
        }
    }

    @Test func lineOf513OctetsIsReportedOnceAndDiscarded() {
        let content = String(repeating: "x", count: 511)
        #expect(frame([content + "\r\nNOOP\r\n"]) == ["tooLong", "line:NOOP"])
        for chunks in everySplit(content + "\r\nNOOP\r\n") {
            #expect(frame(chunks) == ["tooLong", "line:NOOP"])
        }
    }

    @Test func tooLongIsReportedAsSoonAsTheLimitIsPassed() {
        var framer = LineFramer()
        framer.append(Array(repeating: UInt8(ascii: "x"), count: 511))
        #expect(drain(&framer) == ["tooLong"])
        framer.append(Array(repeating: UInt8(ascii: "y"), count: 100))
        #expect(drain(&framer).isEmpty)
        framer.append(Array("\r\nNOOP\r\n".utf8))
        #expect(drain(&framer) == ["line:NOOP"])
    }

    @Test func floodWithoutCRLFKeepsBufferBounded() {
        var framer = LineFramer()
        var events: [String] = []
        for _ in 0..<256 {
            framer.append(Array(repeating: UInt8(ascii: "A"), count: 4096))
            events += drain(&framer)
            #expect(framer.bufferedCount <= LineFramer.maxCommandLineLength)
        }
        #expect(events == ["tooLong"])
    }

    @Test func bareLineEndingsAndNULAreReportedOncePerLine() {
        #expect(frame(["NOOP\n"]) == ["bad"])
        #expect(frame(["\n"]) == ["bad"])
        #expect(frame(["NO\rOP\r\n"]) == ["bad"])
        #expect(frame(["NOOP\r\r\n"]) == ["bad"])
        #expect(frame(["NO\u{0}OP\r\n"]) == ["bad"])
        // A bare CR is only known once the next byte arrives.
        #expect(frame(["NOOP\r", "X\r\n", "RSET\r\n"]) == ["bad", "line:RSET"])
        #expect(frame(["NOOP\r", "\n"]) == ["line:NOOP"])
    }
}
