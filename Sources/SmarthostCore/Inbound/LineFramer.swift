/// Command-mode framing: splits the client's byte stream into command lines.
///
/// `CR LF` ends a line (RFC 5321 §2.3.8); under `BareLineFeedPolicy.normalize` a
/// bare LF ends one too (Postfix 3.9), under `.reject` it is refused like the rest.
/// A bare CR or a NUL in a command line is how SMTP smuggling starts, so such a
/// line is never handed on: the framer reports it once and drops the rest of that line.
/// A line longer than 512 octets including CRLF (§4.5.3.1.4) is reported once,
/// as soon as it passes the limit, and the rest of it is skipped: the buffer
/// holds at most the last chunk appended plus one partial line of 512 octets.
///
/// Usage: `append` the bytes read, then call `nextEvent()` until it returns nil.
/// Lines are returned as slices of the framer's buffer (no copy per line).
public struct LineFramer: Sendable {
    /// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
    public static let maxCommandLineLength = 512

    public enum Event: Equatable, Sendable {
        /// One complete command line, without its CRLF.
        case line(ArraySlice<UInt8>)
        /// The line passed the length limit; the rest of it is discarded.
        case tooLong
        /// The line holds a bare CR or a NUL, or ends in a bare LF under `.reject`;
        /// the rest is discarded.
        case badLineEnding
    }

    private enum Mode: Sendable {
        /// Reading a line that may still be valid.
        case reading
        /// The current line was already reported; drop bytes up to its LF.
        case discarding
    }

    private var buffer: [UInt8] = []
    /// Start of the line being framed; bytes before it were already returned.
    private var lineStart = 0
    /// Where scanning resumes, so a partial line is never scanned twice.
    private var scanIndex = 0
    private var mode = Mode.reading
    private let maxLineLength: Int
    private let bareLineFeed: BareLineFeedPolicy

    public init(maxLineLength: Int = LineFramer.maxCommandLineLength, bareLineFeed: BareLineFeedPolicy = .normalize) {
        precondition(maxLineLength >= 3, "a line needs room for at least one octet and CRLF")
        self.maxLineLength = maxLineLength
        self.bareLineFeed = bareLineFeed
    }

    /// Bytes received but not yet returned as a line (a partial line, or lines
    /// not yet asked for with `nextEvent()`).
    public var bufferedCount: Int { buffer.count - lineStart }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func nextEvent() -> Event? {
        while true {
            if mode == .discarding && !skipDiscarded() {
                return nil
            }
            guard scanIndex < buffer.count else { return nil }
            let index = scanIndex
            scanIndex += 1
            if let event = read(buffer[index], at: index) {
                return event
            }
        }
    }

    private mutating func read(_ byte: UInt8, at index: Int) -> Event? {
        let offset = index - lineStart
        let previousIsCR = offset > 0 && buffer[index - 1] == Octet.cr
        if byte == Octet.lf {
            let line = buffer[lineStart..<(index - (previousIsCR ? 1 : 0))]
            endLine(after: index)
            // A bare LF ends the line only when normalizing; the line is then read as if
            // it ended in CRLF (its length limit counts the CRLF it stands for).
            return previousIsCR || bareLineFeed == .normalize ? .line(line) : .badLineEnding
        }
        if previousIsCR || byte == 0 {
            // A CR followed by anything but LF, or a NUL: never a valid line.
            return reject(.badLineEnding, at: index)
        }
        if exceedsLimit(byte, offset: offset) {
            return reject(.tooLong, at: index)
        }
        return nil
    }

    /// With `offset` octets before this one, the line already needs more than
    /// `maxLineLength` octets once its CRLF is counted.
    private func exceedsLimit(_ byte: UInt8, offset: Int) -> Bool {
        let octetsWithCRLF = byte == Octet.cr ? offset + 2 : offset + 1 + 2
        return octetsWithCRLF > maxLineLength
    }

    /// Reports the current line once; it is skipped up to and including its LF.
    private mutating func reject(_ event: Event, at index: Int) -> Event {
        lineStart = index + 1
        scanIndex = lineStart
        mode = .discarding
        return event
    }

    /// Skips the rejected line up to its LF. Skipped bytes count as consumed,
    /// so the next `append` drops them: a client flooding without CRLF cannot
    /// grow the buffer beyond one read. Returns false while the LF is missing.
    private mutating func skipDiscarded() -> Bool {
        guard let lf = buffer[scanIndex...].firstIndex(of: Octet.lf) else {
            lineStart = buffer.count
            scanIndex = buffer.count
            return false
        }
        endLine(after: lf)
        return true
    }

    private mutating func endLine(after index: Int) {
        lineStart = index + 1
        scanIndex = lineStart
        mode = .reading
    }

    /// Drops returned lines before more bytes are appended; done once per
    /// `append`, not per line, so a pipelined group is moved at most once.
    private mutating func compact() {
        guard lineStart > 0 else { return }
        buffer.removeSubrange(0..<lineStart)
        scanIndex -= lineStart
        lineStart = 0
    }
}

extension LineFramer {
    /// Byte constants and classes shared by the inbound SMTP files; nested so
    /// the module-wide namespace stays free for the other parts of the relay.
    enum Octet {
        static let cr: UInt8 = 13
        static let lf: UInt8 = 10
        static let space: UInt8 = 32
        static let tab: UInt8 = 9
        static let dot = UInt8(ascii: ".")
        static let colon = UInt8(ascii: ":")
        static let less = UInt8(ascii: "<")
        static let greater = UInt8(ascii: ">")
        static let at = UInt8(ascii: "@")
        static let quote = UInt8(ascii: "\"")
        static let backslash = UInt8(ascii: "\\")
        static let equals = UInt8(ascii: "=")
        static let comma = UInt8(ascii: ",")
        static let openBracket = UInt8(ascii: "[")
        static let closeBracket = UInt8(ascii: "]")

        static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
        static func isHex(_ b: UInt8) -> Bool { isDigit(b) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66) }
        static func upper(_ b: UInt8) -> UInt8 { (b >= 0x61 && b <= 0x7A) ? b - 0x20 : b }
        /// Control characters: C0 and DEL (RFC 5234 CTL).
        static func isControl(_ b: UInt8) -> Bool { b < 0x20 || b == 0x7F }
    }
}
