import Logging

/// A log event as journald fields (systemd.journal-fields(7)), a pure function so the
/// mapping is tested without a journal. Our metadata keys become the well-known fields an
/// operator filters on (`journalctl QUEUE_ID=… `, `journalctl ORG=acme PRIORITY=3`); every
/// other key is kept as `SMARTHOST_<KEY>`, and `MESSAGE` is the same line the stderr
/// handler prints, so plain `journalctl -u smarthost` reads like the line log. Every value
/// is escaped as the line log's are (`LogText`): a field shows on a terminal too
/// (`journalctl -o verbose`, `-o json` piped to a pager).
public enum JournalFields {
    /// Metadata key → journal field. `route` is the upstream a delivery used; on an
    /// outcome line (one with `attempts`) it is also `UPSTREAM`.
    static let wellKnown: [String: String] = [
        "id": "QUEUE_ID", "org": "ORG", "route": "ROUTE", "layer": "LAYER", "upstream": "UPSTREAM",
    ]

    public static func make(level: Logger.Level, message: String, metadata: Logger.Metadata,
                            identifier: String = "smarthost") -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", LineLogHandler.render(message: message, metadata: metadata)),
            ("PRIORITY", "\(LineLogHandler.syslogPriority(level))"),
            ("SYSLOG_IDENTIFIER", identifier),
            ("SMARTHOST_EVENT", LogText.escaped(message)),
        ]
        for key in metadata.keys.sorted() {
            let value = LogText.escaped(metadata[key]!.description)
            fields.append((wellKnown[key] ?? "SMARTHOST_" + fieldName(key), value))
        }
        if metadata["upstream"] == nil, metadata["attempts"] != nil, let route = metadata["route"] {
            fields.append(("UPSTREAM", LogText.escaped(route.description)))
        }
        let replyText = metadata["reply"]?.description ?? metadata["reason"]?.description
        if let replyText, let dsn = enhancedStatusCode(in: replyText) {
            fields.append(("DSN", dsn))   // digits and dots only
        }
        return fields
    }

    /// A journal field name: upper-case letters, digits and `_`, not starting with `_` (those
    /// are trusted fields journald sets itself), at most 64 characters.
    static func fieldName(_ key: String) -> String {
        var out = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "a"..."z": out.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A"..."Z", "0"..."9": out.unicodeScalars.append(scalar)
            default: out += "_"
            }
        }
        while out.hasPrefix("_") { out.removeFirst() }
        return String((out.isEmpty ? "KEY" : out).prefix(64 - "SMARTHOST_".count))
    }

    /// The RFC 3463 enhanced status code in a reply such as `550 5.1.1 no such user`
    /// (`class.subject.detail`, class 2, 4 or 5), nil when the upstream sent none.
    static func enhancedStatusCode(in reply: String) -> String? {
        for word in reply.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == "(" || $0 == ")" }) {
            let parts = word.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, ["2", "4", "5"].contains(parts[0]) else { continue }
            let numeric = parts.dropFirst().allSatisfy { part in
                (1...3).contains(part.count) && part.allSatisfy { $0.isASCII && $0.isNumber }
            }
            if numeric { return String(word) }
        }
        return nil
    }
}
