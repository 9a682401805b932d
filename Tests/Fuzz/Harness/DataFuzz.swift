/// `DataDecoder.decode` on arbitrary DATA-phase bytes, fed in random chunks.
///
/// Invariants:
/// - each step consumes at most its chunk, all of it while the end is not reached;
/// - the end is found exactly at the first `CRLF . CRLF` (the first line counting as
///   preceded by CRLF), and nowhere else — `LF.LF`, `CR.CR`, `LF.CRLF`… never end it,
///   whether bare LF is normalized or rejected (control bit 4);
/// - outcome and content equal a line-by-line reference model, whatever the chunking;
/// - clean content has no bare CR, bare LF or NUL, and re-encoded for an upstream
///   (`UpstreamDataEncoder`) it decodes to itself and ends exactly at its own end marker,
///   so nothing in it can act as an end of data downstream.
enum DataFuzz {
    struct Decoded: Equatable {
        var outcome: DataDecoder.Outcome?
        var consumed = 0
        var content: [UInt8] = []
    }

    static func run(_ input: inout FuzzInput) {
        let maxMessageSize = [1 << 30, 64, 1000, 4096][Int(input.control & 3)]
        let maxLine = [1000, 16, 80, 1000][Int(input.control >> 2 & 3)]
        let policy: BareLineFeedPolicy = input.control & 16 == 0 ? .normalize : .reject
        let expected = reference(input.payload, maxMessageSize: maxMessageSize, maxLine: maxLine, bareLineFeed: policy)
        let whole = decode([input.payload], maxMessageSize: maxMessageSize, maxLine: maxLine, bareLineFeed: policy)
        let chunked = decode(input.chunks(), maxMessageSize: maxMessageSize, maxLine: maxLine, bareLineFeed: policy)
        for actual in [whole, chunked] {
            check(actual.outcome == expected.outcome, "outcome \(String(describing: actual.outcome)), expected \(String(describing: expected.outcome))")
            check(actual.consumed == expected.consumed, "consumed \(actual.consumed), expected \(expected.consumed)")
            if actual.outcome == .complete {
                check(actual.content == expected.content, "content differs from the reference")
            }
        }
        if expected.outcome == .complete && maxLine == 1000 {
            checkReencoding(expected.content, maxMessageSize: maxMessageSize)
        }
        if expected.outcome == .complete { checkClean(expected.content, maxLine: maxLine) }
    }

    static func decode(_ chunks: [ArraySlice<UInt8>], maxMessageSize: Int, maxLine: Int,
                       bareLineFeed: BareLineFeedPolicy) -> Decoded {
        var decoder = DataDecoder(maxMessageSize: maxMessageSize, maxTextLineLength: maxLine, bareLineFeed: bareLineFeed)
        var result = Decoded()
        for chunk in chunks {
            let step = decoder.decode(chunk, into: &result.content)
            check(step.consumed >= 0 && step.consumed <= chunk.count, "consumed \(step.consumed) of \(chunk.count)")
            result.consumed += step.consumed
            check(result.content.count == decoder.contentSize, "contentSize out of step")
            check(decoder.contentSize <= maxMessageSize, "content over the size limit")
            if let outcome = step.outcome {
                check(decoder.isFinished, "outcome without finishing")
                result.outcome = outcome
                return result
            }
            check(step.consumed == chunk.count, "stopped early without an outcome")
        }
        return result
    }

    /// RFC 5321 §4.5.2 read literally: data ends at the first CRLF "." CRLF; each line
    /// loses one leading dot; bare CR/LF/NUL, long lines and size are judged over the
    /// whole body, in that order of precedence. Normalizing, a bare LF ends a line too
    /// (it is not bad), and a line that is only "." keeps its dot: inside the body it
    /// always touches a bare LF, so it is content, not an end marker.
    static func reference(_ payload: ArraySlice<UInt8>, maxMessageSize: Int, maxLine: Int,
                          bareLineFeed: BareLineFeedPolicy) -> Decoded {
        let normalize = bareLineFeed == .normalize
        let framed = [13, 10] + Array(payload)
        let marker: [UInt8] = [13, 10, 46, 13, 10]
        guard framed.count >= 5,
              let at = (0...(framed.count - 5)).first(where: { framed[$0..<($0 + 5)].elementsEqual(marker) }) else {
            return Decoded(outcome: nil, consumed: payload.count, content: [])
        }
        let body = Array(payload.prefix(at))   // ends with CRLF unless empty
        var bad = false
        for (index, byte) in body.enumerated() {
            if byte == 0 { bad = true }
            if byte == 13 && (index + 1 == body.count || body[index + 1] != 10) { bad = true }
            if byte == 10 && (index == 0 || body[index - 1] != 13) && !normalize { bad = true }
        }
        var content: [UInt8] = []
        var long = false
        for line in splitLines(body, atBareLineFeed: normalize) {
            let text = line.first == 46 && !(normalize && line.count == 1) ? line.dropFirst() : line
            if text.count > maxLine - 2 { long = true }
            content += text
            content += [13, 10]
        }
        let outcome: DataDecoder.Outcome = bad ? .failed(.badLineEnding)
            : long ? .failed(.lineTooLong)
            : content.count > maxMessageSize ? .failed(.tooBig) : .complete
        return Decoded(outcome: outcome, consumed: at + 3, content: content)
    }

    /// Lines of a body that ends in CRLF, split at CRLF only, or also at a bare LF.
    static func splitLines(_ body: [UInt8], atBareLineFeed: Bool) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index + 1 < body.count {
            if body[index] == 13 && body[index + 1] == 10 {
                lines.append(body[start..<index])
                index += 2
                start = index
            } else if atBareLineFeed && body[index] == 10 {
                lines.append(body[start..<index])
                index += 1
                start = index
            } else {
                index += 1
            }
        }
        return lines
    }

    static func checkClean(_ content: [UInt8], maxLine: Int) {
        check(content.isEmpty || content.suffix(2) == [13, 10], "clean content does not end in CRLF")
        check(!content.contains(0), "NUL in clean content")
        for (index, byte) in content.enumerated() {
            if byte == 13 { check(index + 1 < content.count && content[index + 1] == 10, "bare CR in clean content") }
            if byte == 10 { check(index > 0 && content[index - 1] == 13, "bare LF in clean content") }
        }
    }

    /// What we send upstream must carry exactly this content and end where we say.
    static func checkReencoding(_ content: [UInt8], maxMessageSize: Int) {
        let wire = UpstreamDataEncoder.encode(content)
        var decoder = DataDecoder(maxMessageSize: Int.max / 2)
        var again: [UInt8] = []
        let step = decoder.decode(wire[...], into: &again)
        check(step.outcome == .complete, "re-encoded content fails to decode: \(String(describing: step.outcome))")
        check(step.consumed == wire.count, "re-encoded content ends early at \(step.consumed) of \(wire.count)")
        check(again == content, "re-encoding changed the content")
    }
}
