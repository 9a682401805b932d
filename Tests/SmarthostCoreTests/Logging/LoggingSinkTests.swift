import Foundation
import Glibc
import Logging
import Testing
@testable import SmarthostCore

/// Logging from the event loop never blocks on its reader: a slow journald (or a stopped
/// terminal) must not stall the relay. Lines wait in a bounded buffer for a writer thread;
/// what does not fit is dropped and counted, and the count is itself logged.
@Suite struct LoggingSinkTests {
    @Test func aReaderThatStopsReadingNeverBlocksTheLogger() throws {
        let pipe = try LogTestPipe()
        let sink = LogSink(fd: pipe.writeEnd, capacity: (records: 64, bytes: 1 << 20))
        let logger = Logger(label: "test") { LineLogHandler(label: $0, sink: sink) }
        let total = 1000
        let done = LogTestFlag()
        let writer = Thread {
            for index in 0..<total { logger.info("line", metadata: ["n": "\(index)"]) }
            done.set()
        }
        writer.start()
        // The pipe holds a page; nobody reads it yet.
        let returned = eventually(timeout: 10) { done.isSet }
        #expect(returned, "logging blocked on a full pipe")

        // Every line is either written, in order, or counted in a notice.
        var text = ""
        var numbers: [Int] = []
        var notices: [Substring] = []
        let accounted = eventually(timeout: 10) {
            text += pipe.readAvailable()
            let lines = text.split(separator: "\n")
            numbers = lines.compactMap { line -> Int? in
                guard line.hasPrefix("<6>line n=") else { return nil }
                return Int(line.dropFirst("<6>line n=".count))
            }
            notices = lines.filter { $0.contains("log lines dropped") }
            return numbers.count + notices.compactMap(Self.droppedCount).reduce(0, +) == total
        }
        #expect(accounted, "\(numbers.count) written, notices \(notices)")
        #expect(!notices.isEmpty, "a full buffer drops lines and says so")
        #expect(notices.allSatisfy { $0.hasPrefix("<4>log lines dropped count=") }, "a warning: \(notices)")
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count, "lines kept in order, once")
        sink.stop()
    }

    static func droppedCount(_ notice: Substring) -> Int? {
        notice.split(separator: "=").last.flatMap { Int($0) }
    }

    @Test func flushWritesEverythingQueuedInOrder() throws {
        let pipe = try LogTestPipe()
        let sink = LogSink(fd: pipe.writeEnd)
        let logger = Logger(label: "test") { LineLogHandler(label: $0, sink: sink) }
        for index in 0..<100 { logger.warning("event", metadata: ["n": "\(index)"]) }
        sink.flush()
        let lines = pipe.readAvailable().split(separator: "\n")
        #expect(lines == (0..<100).map { "<4>event n=\($0)"[...] })
        sink.stop()
    }

    @Test func capturingSinkKeepsLinesAsBefore() {
        let sink = LogSink(capturing: true)
        let logger = Logger(label: "test") { LineLogHandler(label: $0, sink: sink) }
        logger.error("failed", metadata: ["reason": "no route"])
        #expect(sink.lines == ["<3>failed reason=\"no route\"\n"])
    }
}

/// A pipe whose write end holds one page, read without blocking.
private final class LogTestPipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EMFILE) }
        readEnd = fds[0]
        writeEnd = fds[1]
        _ = fcntl(writeEnd, 1031, 4096)   // F_SETPIPE_SZ (a macro Glibc does not import)
        _ = fcntl(readEnd, F_SETFL, O_NONBLOCK)
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func readAvailable() -> String {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(readEnd, &chunk, chunk.count)
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private final class LogTestFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
