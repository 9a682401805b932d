import Testing
@testable import SmarthostCore

/// A test argument shown escaped, so control characters stay readable in reports.
private struct EscapedVariant: Sendable, CustomTestStringConvertible {
    let text: String
    var testDescription: String { text.debugDescription }
}

@Suite struct SMTPDataDecoderTests {
    private struct Run: Equatable {
        var content: [UInt8] = []
        var outcomes: [DataDecoder.Outcome] = []
        /// Offset in the whole input just past the end of data.
        var endOffset: Int?
    }

    /// Feeds `input` cut at `cuts`, stopping where the decoder says the data ended.
    private func decode(_ input: [UInt8], cuts: [Int] = [], maxSize: Int = 1 << 20,
                        bareLineFeed: BareLineFeedPolicy = .reject) -> Run {
        var decoder = DataDecoder(maxMessageSize: maxSize, bareLineFeed: bareLineFeed)
        var run = Run()
        var offset = 0
        for end in cuts + [input.count] where end >= offset {
            var chunk = input[offset..<end]
            while !chunk.isEmpty, run.endOffset == nil {
                let step = decoder.decode(chunk, into: &run.content)
                if let outcome = step.outcome {
                    run.outcomes.append(outcome)
                    run.endOffset = chunk.startIndex + step.consumed
                }
                chunk = chunk.dropFirst(step.consumed)
                if step.outcome == nil { #expect(chunk.isEmpty) }
            }
            offset = end
        }
        return run
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The run for every single cut, and for every pair of cuts when short.
    private func everySplit(_ input: [UInt8], maxSize: Int = 1 << 20, bareLineFeed: BareLineFeedPolicy = .reject) -> [Run] {
        var runs = (0...input.count).map { decode(input, cuts: [$0], maxSize: maxSize, bareLineFeed: bareLineFeed) }
        if input.count <= 40 {
            for a in 0...input.count {
                for b in a...input.count {
                    runs.append(decode(input, cuts: [a, b], maxSize: maxSize, bareLineFeed: bareLineFeed))
                }
            }
        }
        // byte by byte
        runs.append(decode(input, cuts: Array(0..<input.count), maxSize: maxSize, bareLineFeed: bareLineFeed))
        return runs
    }

    @Test func decodesContentAndEndAtEverySplitPoint() {
        let input = bytes("Subject: hi\r\n\r\nbody\r\n.\r\n")
        let expected = Run(content: bytes("Subject: hi\r\n\r\nbody\r\n"), outcomes: [.complete], endOffset: input.count)
        for run in everySplit(input) {
            #expect(run == expected)
        }
    }

    @Test func dotUnstuffing() {
        let input = bytes("..leading\r\n.x\r\nmid.dle\r\n...\r\n. \r\n.\r\n")
        let expected = bytes(".leading\r\nx\r\nmid.dle\r\n..\r\n \r\n")
        for run in everySplit(input) {
            #expect(run.content == expected)
            #expect(run.outcomes == [.complete])
        }
    }

    @Test func firstLineCountsAsPrecededByCRLF() {
        #expect(decode(bytes(".\r\n")) == Run(content: [], outcomes: [.complete], endOffset: 3))
        #expect(decode(bytes("..\r\n.\r\n")).content == bytes(".\r\n"))
    }

    @Test func reportsWhereTheDataEndedSoPipelinedCommandsRemain() {
        let input = bytes("a\r\n.\r\nMAIL FROM:<a@b>\r\n")
        for run in everySplit(input) {
            #expect(run.endOffset == 6)
            #expect(run.content == bytes("a\r\n"))
        }
    }

    /// Each variant hides a fake end of data; none of them may end it, and the
    /// real end gives exactly one failure.
    fileprivate static let smugglingVariants = ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\n", "\r", "\u{0}", "\r\n.\r\r\n", "\r\n.\rX"]
        .map(EscapedVariant.init)

    @Test(arguments: smugglingVariants)
    fileprivate func bareLineEndingPoisonsAtEverySplitPoint(variant: EscapedVariant) {
        let input = bytes("Subject: a\r\n\r\nfirst" + variant.text + "MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsecond\r\n.\r\n")
        for run in everySplit(input) {
            #expect(run.outcomes == [.failed(.badLineEnding)])
            #expect(run.endOffset == input.count)
        }
    }

    /// The same variants with bare LF normalized (Postfix 3.9): one message, ending only at
    /// the real `CRLF.CRLF`; a variant with a bare CR or a NUL still fails; one without is
    /// delivered whole, the fake end and the "second message" inside it as content, CRLF
    /// line ends, and its `.` line kept (the upstream encoder dot-stuffs it).
    @Test(arguments: smugglingVariants)
    fileprivate func smugglingVariantsWithBareLineFeedNormalized(variant: EscapedVariant) {
        let tail = "MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsecond\r\n"
        let input = bytes("Subject: a\r\n\r\nfirst" + variant.text + tail + ".\r\n")
        // Bytes left once every CRLF is taken out: a CR or a NUL among them poisons.
        var rest: [UInt8] = []
        var normalized: [UInt8] = []
        let raw = bytes(variant.text)
        var i = 0
        while i < raw.count {
            if raw[i] == 13, i + 1 < raw.count, raw[i + 1] == 10 {
                normalized += [13, 10]
                i += 2
                continue
            }
            rest.append(raw[i])
            normalized += raw[i] == 10 ? [13, 10] : [raw[i]]
            i += 1
        }
        let poisoned = rest.contains(13) || rest.contains(0)
        for run in everySplit(input, bareLineFeed: .normalize) {
            #expect(run.endOffset == input.count)
            if poisoned {
                #expect(run.outcomes == [.failed(.badLineEnding)])
            } else {
                #expect(run.outcomes == [.complete])
                #expect(run.content == bytes("Subject: a\r\n\r\nfirst") + normalized + bytes(tail))
            }
        }
    }

    @Test func bareLineFeedLinesBecomeCRLFAndDotsAreUnstuffed() {
        let input = bytes("Subject: lf\n\nline one\n..stuffed\n.\nlast\r\n.\r\n")
        let expected = bytes("Subject: lf\r\n\r\nline one\r\n.stuffed\r\n.\r\nlast\r\n")
        for run in everySplit(input, bareLineFeed: .normalize) {
            #expect(run.outcomes == [.complete])
            #expect(run.content == expected)
            #expect(run.endOffset == input.count)
        }
        // Upstream the kept `.` line is stuffed again: it cannot end the data there.
        let wire = String(decoding: UpstreamDataEncoder.encode(expected), as: UTF8.self)
        #expect(wire == "Subject: lf\r\n\r\nline one\r\n..stuffed\r\n..\r\nlast\r\n.\r\n")
    }

    /// `LF . LF`, `LF . CRLF`, `CRLF . LF` are never the end; the next `CRLF . CRLF` is.
    @Test func onlyCRLFDotCRLFEndsDataWhenNormalizing() {
        for fake in ["\n.\n", "\n.\r\n", "\r\n.\n"] {
            let input = bytes("a" + fake + "b\r\n.\r\nNOOP\r\n")
            for run in everySplit(input, bareLineFeed: .normalize) {
                #expect(run.outcomes == [.complete])
                #expect(run.content == bytes("a\r\n.\r\nb\r\n"))
                #expect(run.endOffset == input.count - 6)
            }
        }
        // `LF . CRLF` then `. CRLF`: the CRLF after the first dot line makes the second the end.
        let input = bytes("a\n.\r\n.\r\n")
        #expect(decode(input, bareLineFeed: .normalize) == Run(content: bytes("a\r\n.\r\n"), outcomes: [.complete], endOffset: input.count))
    }

    @Test func normalizedLineEndsCountTowardsSizeAndLineLength() {
        // 998 octets + LF is a 1000-octet line; 999 + LF is over.
        let at = String(repeating: "x", count: 998)
        #expect(decode(bytes(at + "\n\r\n.\r\n"), bareLineFeed: .normalize).outcomes == [.complete])
        #expect(decode(bytes(at + "x\n\r\n.\r\n"), bareLineFeed: .normalize).outcomes == [.failed(.lineTooLong)])
        // The CR added for each bare LF is content: 6 + CRLF + CRLF = 10 fits 10, 7 + … does not.
        #expect(decode(bytes("123456\n\r\n.\r\n"), maxSize: 10, bareLineFeed: .normalize).outcomes == [.complete])
        #expect(decode(bytes("1234567\n\r\n.\r\n"), maxSize: 10, bareLineFeed: .normalize).outcomes == [.failed(.tooBig)])
    }

    @Test func bareCRAndNULStillFailWhenNormalizing() {
        for bad in ["a\rb\n", "a\u{0}\n", "a\r\r\n", ".\rX\n"] {
            let run = decode(bytes(bad + "\r\n.\r\n"), bareLineFeed: .normalize)
            #expect(run.outcomes == [.failed(.badLineEnding)], "\(bad.debugDescription)")
        }
    }

    @Test func nulAndBareLineEndingAtTheStart() {
        for start in ["\n", "\r", "\u{0}"] {
            let run = decode(bytes(start + "\r\n.\r\n"))
            #expect(run.outcomes == [.failed(.badLineEnding)])
        }
    }

    @Test func textLineOf1000OctetsIsAccepted() {
        let line = String(repeating: "x", count: 998) + "\r\n"
        let run = decode(bytes(line + ".\r\n"))
        #expect(run.outcomes == [.complete])
        #expect(run.content == bytes(line))
    }

    @Test func textLineOf1001OctetsFailsAtTheEndOnly() {
        let input = bytes(String(repeating: "x", count: 999) + "\r\nmore\r\n.\r\n")
        for cut in stride(from: 0, through: input.count, by: 7) {
            let run = decode(input, cuts: [cut])
            #expect(run.outcomes == [.failed(.lineTooLong)])
            #expect(run.endOffset == input.count)
        }
    }

    @Test func stuffedDotDoesNotCountTowardsLineLength() {
        // 1001 octets on the wire, 1000 once the transparency dot is removed (§4.5.3.1.6).
        let input = bytes("." + String(repeating: ".", count: 998) + "\r\n.\r\n")
        #expect(decode(input).outcomes == [.complete])
    }

    @Test func contentExactlyAtMaxSizeIsAccepted() {
        let input = bytes("12345678\r\n.\r\n")
        for run in everySplit(input, maxSize: 10) {
            #expect(run.outcomes == [.complete])
            #expect(run.content == bytes("12345678\r\n"))
        }
    }

    @Test func contentOverMaxSizeStopsEmittingAndFailsAtTheEnd() {
        let input = bytes("123456789\r\nmore lines\r\n.\r\n")
        for run in everySplit(input, maxSize: 10) {
            #expect(run.outcomes == [.failed(.tooBig)])
            #expect(run.content.count <= 10)
            #expect(run.endOffset == input.count)
        }
    }

    @Test func smugglingIsReportedBeforeOtherFailures() {
        let input = bytes(String(repeating: "x", count: 1200) + "\n.\n" + "\r\n.\r\n")
        #expect(decode(input, maxSize: 100).outcomes == [.failed(.badLineEnding)])
    }

    @Test func failureReplies() {
        #expect(DataDecoder.Failure.badLineEnding.reply.wireBytes == bytes("550 5.5.2 Error: bare CR, bare LF or NUL in message content\r\n"))
        #expect(DataDecoder.Failure.lineTooLong.reply.wireBytes == bytes("500 5.5.2 Line too long\r\n"))
        #expect(DataDecoder.Failure.tooBig.reply.wireBytes == bytes("552 5.3.4 Error: message file too big\r\n"))
    }

    @Test func eightBitContentPassesThrough() {
        let input: [UInt8] = [0xC3, 0xA9, 0x0D, 0x0A, 0x2E, 0x0D, 0x0A]
        #expect(decode(input) == Run(content: [0xC3, 0xA9, 0x0D, 0x0A], outcomes: [.complete], endOffset: 7))
    }
}
