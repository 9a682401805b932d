import Glibc
import Logging

/// One line per event on stderr, `<N>` syslog priority first so journald (which reads a
/// service's stderr through `$JOURNAL_STREAM`) files it at the right level:
/// `<6>accepted id=… from=<…> nrcpt=1 size=912 org=acme route=smtp.acme:587 layer=org`.
/// Metadata values are printed escaped (`LogText`): callers never put a secret in them,
/// but much of what they log came from outside.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let sink: LogSink

    public init(label: String, sink: LogSink = .standardError) {
        self.label = label
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        sink.write("<\(Self.syslogPriority(event.level))>" + Self.render(message: event.message.description, metadata: merged) + "\n")
    }

    /// `event key=value …`, keys sorted; shared with the journal's `MESSAGE=` field.
    static func render(message: String, metadata: Logger.Metadata) -> String {
        var line = LogText.escaped(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=\(quoted(metadata[key]!.description))"
        }
        return line
    }

    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// Values with spaces are quoted so a line stays machine-splittable; every value is
    /// escaped (`LogText`), and a value that needed escaping is quoted as well.
    static func quoted(_ value: String) -> String {
        if value.isEmpty { return "\"\"" }
        let escaped = LogText.escaped(value)
        guard escaped != value || value.utf8.contains(where: { $0 == 32 || $0 == 34 }) else { return value }
        var out = "\""
        for scalar in escaped.unicodeScalars {
            if scalar == "\"" { out += "\\\"" } else { out.unicodeScalars.append(scalar) }
        }
        return out + "\""
    }
}
