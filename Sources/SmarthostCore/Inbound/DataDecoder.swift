/// Incremental decoder for the DATA phase (RFC 5321 §4.1.1.4, §4.5.2).
///
/// Fed the client's bytes in chunks of any size, it appends the message content
/// (dot-unstuffed, CRLF line ends) to a caller-owned buffer and finds the end of data.
///
/// The end of data is only `CR LF . CR LF`, the first line counting as preceded
/// by CRLF. Any other ending (`LF . LF`, `CR . CR`, `CR LF . LF`, `LF . CR LF`…)
/// is how SMTP smuggling hides a second message inside the first, so it never ends
/// the data. What it becomes depends on the `BareLineFeedPolicy`:
/// - `normalize` (Postfix 3.9): a bare LF ends a line and is stored as CRLF. A line
///   `.` that is not the real end (a bare LF before or after it) is kept as content,
///   so the upstream encoder dot-stuffs it and it can end nothing downstream either:
///   a smuggled "second message" arrives as text inside the first.
/// - `reject`: a bare LF poisons the transaction like a bare CR.
/// A bare CR or a NUL always poisons the transaction: the decoder reads on to the
/// real end and then reports one failure — one reply, never a second message.
/// Likewise a text line over 1000 octets (§4.5.3.1.6) or content over the size
/// limit (RFC 1870) is read to the end and then reported once. After any
/// failure no more content is emitted.
public struct DataDecoder: Sendable {
    /// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF,
    /// not counting a leading dot added for transparency.
    public static let maxTextLineLength = 1000

    public enum Failure: Equatable, Sendable {
        /// Bare CR or NUL in the content, or a bare LF under `.reject`.
        case badLineEnding
        /// A text line over the line length limit.
        case lineTooLong
        /// Content over `maxMessageSize`.
        case tooBig

        public var reply: SMTPReply {
            switch self {
            case .badLineEnding: SMTPReply(550, "5.5.2", "Error: bare CR, bare LF or NUL in message content")
            case .lineTooLong: SMTPReply(500, "5.5.2", "Line too long")
            case .tooBig: SMTPReply(552, "5.3.4", "Error: message file too big")
            }
        }
    }

    public enum Outcome: Equatable, Sendable {
        /// `CRLF.CRLF` arrived and the content is clean.
        case complete
        /// `CRLF.CRLF` arrived but the transaction failed; discard the content.
        case failed(Failure)
    }

    public struct Step: Equatable, Sendable {
        /// Bytes of the chunk that belong to the DATA phase; the rest (pipelined
        /// commands after the end) is for command mode.
        public var consumed: Int
        /// Set once the end of data was read; nil while more content is expected.
        public var outcome: Outcome?
    }

    /// Where in a line the last byte left the decoder.
    private enum Position: Sendable {
        case lineStart   // after CR LF (or at the very beginning)
        case inLine      // after a content byte
        case afterCR     // after a CR that should be followed by LF
        case afterDot    // after a dot at line start
        case afterDotCR  // after "." CR at line start: LF here ends the data
        case ended
    }

    /// What happens to one input byte.
    private enum Disposition {
        case content, drop, end
        /// A bare LF being normalized: CRLF goes out in its place.
        case lineEnd
        /// The LF ending a `.` line that is not the end of data: the dropped dot, then CRLF.
        case dotLineEnd
    }

    private static let crlf: [UInt8] = [Octet.cr, Octet.lf]
    private static let dotCRLF: [UInt8] = [Octet.dot, Octet.cr, Octet.lf]

    public let maxMessageSize: Int
    public let bareLineFeed: BareLineFeedPolicy
    private let maxLineContent: Int
    private var position = Position.lineStart
    /// Whether the line now being read was preceded by CRLF (not a bare LF): only then
    /// can a `.` line be the end of data.
    private var afterCRLF = true
    private var lineLength = 0
    private var badLineEnding = false
    private var lineTooLong = false
    private var tooBig = false
    /// Content bytes emitted so far.
    public private(set) var contentSize = 0

    public init(maxMessageSize: Int, maxTextLineLength: Int = DataDecoder.maxTextLineLength,
                bareLineFeed: BareLineFeedPolicy = .normalize) {
        self.maxMessageSize = maxMessageSize
        self.maxLineContent = maxTextLineLength - 2
        self.bareLineFeed = bareLineFeed
    }

    public var isFinished: Bool { position == .ended }

    /// Decodes one chunk, appending content to `content`. Stops right after the
    /// end of data; `Step.consumed` says how far it read.
    public mutating func decode(_ input: ArraySlice<UInt8>, into content: inout [UInt8]) -> Step {
        precondition(position != .ended, "DataDecoder used after the end of data")
        var runStart = input.startIndex
        var index = input.startIndex
        while index < input.endIndex {
            if position == .inLine {
                index = skipPlainText(input, from: index)
                if index == input.endIndex { break }
            }
            let disposition = step(input[index])
            if disposition != .content {
                emit(input[runStart..<index], into: &content)
                runStart = index + 1
                if disposition == .lineEnd { emit(Self.crlf[...], into: &content) }
                if disposition == .dotLineEnd { emit(Self.dotCRLF[...], into: &content) }
            }
            index += 1
            if disposition == .end {
                return Step(consumed: index - input.startIndex, outcome: outcome)
            }
        }
        emit(input[runStart..<index], into: &content)
        return Step(consumed: input.count, outcome: nil)
    }

    /// Fast path inside a line: octets other than CR, LF and NUL are content
    /// and only need counting, so they are not run through the state machine.
    private mutating func skipPlainText(_ input: ArraySlice<UInt8>, from start: Int) -> Int {
        let stop = input.withUnsafeBufferPointer { buffer -> Int in
            OctetScan.firstLineBreakOrNUL(in: buffer, from: start - input.startIndex, to: buffer.count)
                + input.startIndex
        }
        lineLength += stop - start
        if lineLength > maxLineContent {
            lineTooLong = true
        }
        return stop
    }

    private var outcome: Outcome {
        // The smuggling check is reported first: it is the one that matters most.
        if badLineEnding { return .failed(.badLineEnding) }
        if lineTooLong { return .failed(.lineTooLong) }
        if tooBig { return .failed(.tooBig) }
        return .complete
    }

    private var failed: Bool { badLineEnding || lineTooLong || tooBig }

    /// Appends a run of content bytes, unless the transaction already failed.
    private mutating func emit(_ run: ArraySlice<UInt8>, into content: inout [UInt8]) {
        guard !run.isEmpty, !failed else { return }
        guard run.count <= maxMessageSize - contentSize else {
            tooBig = true
            return
        }
        content.append(contentsOf: run)
        contentSize += run.count
    }

    /// The state machine: one byte in, what to do with it out.
    private mutating func step(_ byte: UInt8) -> Disposition {
        switch position {
        case .lineStart:
            if byte == Octet.dot {
                // §4.5.2: a leading dot is removed; alone on its line it may end the data.
                position = .afterDot
                return .drop
            }
            return text(byte)
        case .inLine:
            return text(byte)
        case .afterCR:
            if byte == Octet.lf {
                startLine(afterCRLF: true)
                return .content
            }
            badLineEnding = true   // CR not followed by LF
            return text(byte)
        case .afterDot:
            if byte == Octet.cr {
                position = .afterDotCR
                return .drop
            }
            if byte == Octet.lf && bareLineFeed == .normalize {
                // `.` LF: a line of its own, never the end; kept so it is stuffed upstream.
                startLine(afterCRLF: false)
                return .dotLineEnd
            }
            return text(byte)
        case .afterDotCR:
            if byte == Octet.lf {
                return dotLineEnded()
            }
            badLineEnding = true   // "." CR not followed by LF
            return text(byte)
        case .ended:
            preconditionFailure("DataDecoder used after the end of data")
        }
    }

    /// `.` CR LF: the end of data only when the line before ended in CRLF too.
    private mutating func dotLineEnded() -> Disposition {
        guard afterCRLF else {
            startLine(afterCRLF: true)
            return .dotLineEnd
        }
        position = .ended
        return .end
    }

    private mutating func startLine(afterCRLF: Bool) {
        position = .lineStart
        lineLength = 0
        self.afterCRLF = afterCRLF
    }

    /// A byte inside a line. Under `.reject` a bare LF does not start a new line:
    /// `LF . CR LF` must not end the data, so after it the decoder stays `inLine`.
    private mutating func text(_ byte: UInt8) -> Disposition {
        switch byte {
        case Octet.cr:
            position = .afterCR
            return .content
        case Octet.lf:
            if bareLineFeed == .normalize {
                startLine(afterCRLF: false)
                return .lineEnd
            }
            badLineEnding = true
        case 0:
            badLineEnding = true
        default:
            break
        }
        position = .inLine
        lineLength += 1
        if lineLength > maxLineContent {
            lineTooLong = true
        }
        return .content
    }
}

private typealias Octet = LineFramer.Octet
