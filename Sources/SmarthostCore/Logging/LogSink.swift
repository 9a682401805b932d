import Glibc
import Logging

/// Where log records go: stderr or the journal in production, a buffer in tests.
///
/// Most records are logged on the event loop, and a write to stderr (or a datagram to
/// journald) blocks for as long as the reader is slow: a busy journald used to stall the
/// whole relay. So a record is only appended to a bounded buffer here; a writer thread
/// does the `write(2)` and `sd_journal_sendv`, in order. A record that does not fit is
/// dropped and counted, and the count is logged as a warning once there is room again
/// (`log lines dropped count=N`): a gap in the log is never silent.
public final class LogSink: @unchecked Sendable {
    enum Record {
        case line(String)
        /// journald fields; `fallback` goes to the fd when the journal refuses them.
        case journal([(name: String, value: String)], fallback: String)
    }

    private enum Writer {
        case notStarted
        case running(SystemThread)
        /// No thread could be started: records are written by the caller, as before.
        case unavailable
        case stopped
    }

    private let lock = Mutex()
    private let fd: Int32
    private var captured: [String]?
    private let capacity: (records: Int, bytes: Int)
    private var pending: [Record] = []
    private var pendingBytes = 0
    private var dropped = 0
    private var droppedJournal = false
    /// The writer holds records taken from `pending` that are not written yet.
    private var writing = false
    private var writer = Writer.notStarted
    private var stopping = false

    public static let standardError = LogSink(fd: 2)

    /// Ten thousand lines wait at most (a burst of deferrals after an upstream outage
    /// fits); the byte bound keeps a few huge lines from taking more than 4 MiB.
    static let defaultCapacity = (records: 10_000, bytes: 4 << 20)

    public convenience init(fd: Int32) {
        self.init(fd: fd, capacity: Self.defaultCapacity)
    }

    init(fd: Int32, capacity: (records: Int, bytes: Int)) {
        self.fd = fd
        self.capacity = capacity
    }

    public init(capturing: Bool) {
        fd = -1
        capacity = Self.defaultCapacity
        captured = []
    }

    /// The lines a capturing sink was given (journal records as their fallback line).
    public var lines: [String] { lock.withLock { captured ?? [] } }

    /// A rendered line, newline included. Never blocks.
    func write(_ line: String) {
        enqueue(.line(line), bytes: line.utf8.count)
    }

    /// A journal record; `fallback` (a rendered line) is written instead if the journal
    /// refuses it. Never blocks.
    func send(journal fields: [(name: String, value: String)], fallback: String) {
        let bytes = fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 1 }
        enqueue(.journal(fields, fallback: fallback), bytes: bytes)
    }

    /// Waits (at most `milliseconds`) until every record queued so far is written: for
    /// the end of the process, so its last lines ("stopped") are not lost.
    public func flush(milliseconds: Int = 2000) {
        let deadline = MonotonicClock.nowMilliseconds() + Int64(milliseconds)
        lock.withLock {
            guard case .running = writer else { return }
            while !pending.isEmpty || writing || dropped > 0 {
                let left = deadline - MonotonicClock.nowMilliseconds()
                if left <= 0 { return }
                lock.wait(milliseconds: Int(left))
            }
        }
    }

    /// Writes what is queued, then ends the writer thread; later records are written by
    /// the caller. For sinks that do not live as long as the process (tests).
    func stop() {
        let thread = lock.withLock { () -> SystemThread? in
            stopping = true
            lock.broadcast()
            guard case .running(let thread) = writer else { return nil }
            writer = .stopped
            return thread
        }
        thread?.join()
    }

    // MARK: the caller's side

    private func enqueue(_ record: Record, bytes: Int) {
        let direct = lock.withLock { () -> Bool in
            if captured != nil {
                captured!.append(Self.text(of: record))
                return false
            }
            startWriterIfNeeded()
            switch writer {
            case .unavailable, .stopped: return true
            case .notStarted, .running: break
            }
            guard pending.count < capacity.records, pendingBytes + bytes <= capacity.bytes else {
                dropped += 1
                if case .journal = record { droppedJournal = true }
                return false
            }
            pending.append(record)
            pendingBytes += bytes
            // The writer looks at `pending` again before it waits: wake it only when idle.
            if pending.count == 1 && !writing { lock.broadcast() }
            return false
        }
        if direct { lock.withLock { output(record) } }
    }

    /// Called with the lock held.
    private func startWriterIfNeeded() {
        guard case .notStarted = writer else { return }
        do {
            writer = .running(try SystemThread.start(name: "log-writer") { [self] in drain() })
        } catch {
            writer = .unavailable
        }
    }

    // MARK: the writer thread

    private func drain() {
        while true {
            let taken = lock.withLock { () -> (records: [Record], notice: Record?)? in
                writing = false
                lock.broadcast()   // for flush()
                while pending.isEmpty && dropped == 0 && !stopping { lock.wait() }
                if pending.isEmpty && dropped == 0 { return nil }
                defer {
                    pending.removeAll(keepingCapacity: true)
                    pendingBytes = 0
                    dropped = 0
                    droppedJournal = false
                }
                writing = true
                return (pending, dropped > 0 ? Self.droppedNotice(dropped, journal: droppedJournal) : nil)
            }
            guard let taken else { return }
            for record in taken.records { output(record) }
            // After the records that were kept: the lines it counts came after them.
            if let notice = taken.notice { output(notice) }
        }
    }

    private func output(_ record: Record) {
        switch record {
        case .line(let line):
            writeAll(line)
        case .journal(let fields, let fallback):
            if JournaldLogHandler.send(fields) < 0 { writeAll(fallback) }
        }
    }

    private func writeAll(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    private static func text(of record: Record) -> String {
        switch record {
        case .line(let line): return line
        case .journal(_, let fallback): return fallback
        }
    }

    /// In the form of what was dropped: a journal record when journal records were lost.
    static func droppedNotice(_ count: Int, journal: Bool) -> Record {
        let message = "log lines dropped"
        let metadata: Logger.Metadata = ["count": "\(count)"]
        let line = "<\(LineLogHandler.syslogPriority(.warning))>"
            + LineLogHandler.render(message: message, metadata: metadata) + "\n"
        guard journal else { return .line(line) }
        return .journal(JournalFields.make(level: .warning, message: message, metadata: metadata), fallback: line)
    }
}
