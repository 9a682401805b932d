/// Incremental parser for replies read from an upstream SMTP server (RFC 5321 §4.2).
///
/// Bytes arrive in whatever chunks the socket (or the TLS layer) hands over; `feed` them,
/// then call `nextReply()` until it returns nil. A reply cut mid-line simply waits for more.
///
///     Reply-line = *( Reply-code "-" [ textstring ] CRLF )
///                     Reply-code [ SP textstring ] CRLF
///
/// Bare LF is tolerated as a line end (many servers are sloppy about replies, and a reply
/// cannot smuggle anything: only our own commands are interpreted by the server).
/// Anything else that does not fit the grammar is a protocol error: once one is seen the
/// connection is unusable, so the error is sticky.
public struct UpstreamReplyParser: Sendable {
    /// Why the stream could not be parsed; the session turns it into a `.protocol` failure.
    public struct Malformed: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// Longest reply line accepted, in octets without the line end. RFC 5321 §4.5.3.1.5
    /// allows 512; real servers exceed it in EHLO lists and long texts, so we allow more.
    public let maxLineLength: Int
    /// Most lines in one multi-line reply; a server sending more is broken or hostile.
    public let maxLines: Int

    private var buffer: [UInt8] = []
    /// Start of the unconsumed bytes in `buffer`; compacted lazily to keep feeding O(n).
    private var start = 0
    /// Where to resume the search for LF, so a long partial line is not rescanned.
    private var scanFrom = 0
    private var pendingCode: Int?
    private var pendingLines: [[UInt8]] = []
    private var failure: Malformed?

    public init(maxLineLength: Int = 4096, maxLines: Int = 100) {
        self.maxLineLength = maxLineLength
        self.maxLines = maxLines
    }

    /// True when bytes that are not yet a complete reply are buffered.
    public var hasBufferedBytes: Bool { start < buffer.count || !pendingLines.isEmpty }

    public mutating func feed(_ bytes: some Collection<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            scanFrom -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Forgets everything buffered. Used after STARTTLS: bytes read before the TLS
    /// handshake must never be taken as replies from inside the tunnel (RFC 3207 §4.2).
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        start = 0
        scanFrom = 0
        pendingCode = nil
        pendingLines.removeAll()
    }

    /// The next complete reply, nil when more bytes are needed.
    public mutating func nextReply() throws(Malformed) -> SMTPReply? {
        if let failure { throw failure }
        do {
            while let line = try nextLine() {
                if let reply = try accept(line: line) { return reply }
            }
            return nil
        } catch {
            failure = error
            throw error
        }
    }

    /// One line without its line end, or nil when no LF has arrived yet.
    private mutating func nextLine() throws(Malformed) -> ArraySlice<UInt8>? {
        guard let lf = buffer[scanFrom...].firstIndex(of: 10) else {
            scanFrom = buffer.count
            if buffer.count - start > maxLineLength + 1 {
                throw Malformed(reason: "reply line longer than \(maxLineLength) octets")
            }
            return nil
        }
        var end = lf
        if end > start && buffer[end - 1] == 13 { end -= 1 }
        let line = buffer[start..<end]
        start = lf + 1
        scanFrom = start
        if line.count > maxLineLength {
            throw Malformed(reason: "reply line longer than \(maxLineLength) octets")
        }
        return line
    }

    /// Adds one line to the reply being assembled; returns the reply on its last line.
    private mutating func accept(line: ArraySlice<UInt8>) throws(Malformed) -> SMTPReply? {
        let (code, isLast) = try Self.codeAndSeparator(of: line)
        if let pendingCode, pendingCode != code {
            throw Malformed(reason: "reply code changed from \(pendingCode) to \(code) within a multi-line reply")
        }
        pendingCode = code
        pendingLines.append(Array(line.dropFirst(4)))
        if pendingLines.count > maxLines {
            throw Malformed(reason: "multi-line reply longer than \(maxLines) lines")
        }
        guard isLast else { return nil }
        let reply = Self.makeReply(code: code, lines: pendingLines)
        pendingCode = nil
        pendingLines.removeAll()
        return reply
    }

    /// RFC 5321 §4.2: three digits (first 2–5, second 0–5), then SP, "-" or the line end.
    private static func codeAndSeparator(of line: ArraySlice<UInt8>) throws(Malformed) -> (Int, Bool) {
        let digits = Array(line.prefix(3))
        guard digits.count == 3,
              (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(digits[0]),
              (UInt8(ascii: "0")...UInt8(ascii: "5")).contains(digits[1]),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digits[2]) else {
            throw Malformed(reason: "malformed reply line: \(printable(line.prefix(40)))")
        }
        let code = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        if line.count == 3 { return (code, true) }
        switch line[line.startIndex + 3] {
        case UInt8(ascii: " "): return (code, true)
        case UInt8(ascii: "-"): return (code, false)
        default: throw Malformed(reason: "malformed reply line: \(printable(line.prefix(40)))")
        }
    }

    /// The enhanced code is taken from the first line when its class matches the reply's
    /// (RFC 2034 §3, RFC 3463 §2) and stripped from every line that repeats it.
    private static func makeReply(code: Int, lines: [[UInt8]]) -> SMTPReply {
        let enhanced = enhancedCode(in: lines[0], replyClass: code / 100)
        let texts = lines.map { line -> String in
            guard let enhanced else { return String(decoding: line, as: UTF8.self) }
            let prefix = Array(enhanced.utf8)
            if line.starts(with: prefix) {
                return String(decoding: line.dropFirst(prefix.count).drop { $0 == 32 }, as: UTF8.self)
            }
            return String(decoding: line, as: UTF8.self)
        }
        return SMTPReply(code: code, enhanced: enhanced, lines: texts)
    }

    /// "class.subject.detail" (RFC 3463 §2: class 2/4/5, subject and detail 1–3 digits).
    private static func enhancedCode(in text: [UInt8], replyClass: Int) -> String? {
        let token = text.prefix { $0 != 32 }
        let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3,
              parts[0].count == 1, parts[0].first == UInt8(ascii: "0") + UInt8(replyClass),
              parts[1].count <= 3, parts[2].count <= 3,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (48...57).contains($0) } }) else {
            return nil
        }
        return String(decoding: token, as: UTF8.self)
    }

    private static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { (32...126).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
