import CSystemd
import Glibc
import Logging

/// Sends each event to journald with structured fields (`sd_journal_sendv`), so
/// `journalctl -u smarthost QUEUE_ID=…` finds one message's whole story. Chosen only when
/// our stderr is the journal's stream (see `LogDestination`); if the journal refuses a
/// record, the same event goes to stderr as a line, so nothing is dropped silently. Sent
/// from `LogSink`'s writer thread: a slow journal never stalls the loop.
public struct JournaldLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let sink: LogSink

    public init(label: String, sink: LogSink = .standardError) {
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = JournalFields.make(level: event.level, message: event.message.description, metadata: merged)
        // MESSAGE is the line the stderr handler prints; the sink sends the record from its
        // writer thread, never from the loop.
        let line = "<\(LineLogHandler.syslogPriority(event.level))>" + fields[0].value + "\n"
        sink.send(journal: fields, fallback: line)
    }

    /// One `NAME=value` iovec per field; values may hold newlines (libsystemd then uses the
    /// journal's length-prefixed form). Returns sd_journal_sendv's result.
    static func send(_ fields: [(name: String, value: String)]) -> Int32 {
        var storage = fields.map { Array("\($0.name)=\($0.value)".utf8) }
        return storage.withUnsafeMutableBufferPointer { buffers -> Int32 in
            var vectors: [iovec] = []
            vectors.reserveCapacity(buffers.count)
            for index in buffers.indices {
                buffers[index].withUnsafeMutableBytes { raw in
                    vectors.append(iovec(iov_base: raw.baseAddress, iov_len: raw.count))
                }
            }
            // The pointers stay valid: `storage` is not touched until this closure returns.
            return sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }
}
