/// `smarthost queue list --json`: one array of objects, keys in a fixed order, absent
/// values as `null`, times as Unix seconds. Written by hand: the core has no Foundation.
extension QueueReport {
    public static func json(_ envelopes: [SpoolEnvelope], area: SpoolArea) -> String {
        if envelopes.isEmpty { return "[]\n" }
        return "[\n" + envelopes.map { "  " + object($0, area: area) }.joined(separator: ",\n") + "\n]\n"
    }

    static func object(_ envelope: SpoolEnvelope, area: SpoolArea) -> String {
        let fields: [(String, String)] = [
            ("id", string(envelope.id.rawValue)),
            ("area", string(area.rawValue)),
            ("received_at", String(envelope.receivedAt)),
            ("queued_at", String(envelope.queuedAt)),
            ("size", String(envelope.size)),
            ("sender", string(envelope.sender)),
            ("recipients", array(envelope.recipients)),
            ("done_recipients", array(envelope.doneRecipients.sorted())),
            ("refused_recipients", "{" + envelope.refusedRecipients.keys.sorted().map {
                "\(string($0)): \(string(envelope.refusedRecipients[$0]!))" }.joined(separator: ", ") + "}"),
            ("org", envelope.org.map(string) ?? "null"),
            ("layer", envelope.layer.map(string) ?? "null"),
            ("route", envelope.route.map(string) ?? "null"),
            ("attempts", String(envelope.attempts)),
            ("next_attempt_at", String(envelope.nextAttemptAt)),
            ("last_error", envelope.lastError.map(string) ?? "null"),
            ("failure", envelope.failure.map(string) ?? "null"),
            ("failed_at", envelope.failedAt.map { String($0) } ?? "null"),
        ]
        return "{" + fields.map { "\(string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func array(_ values: [String]) -> String {
        "[" + values.map(string).joined(separator: ", ") + "]"
    }

    /// A JSON string literal (RFC 8259 §7): quote and backslash escaped, and every scalar of
    /// `TerminalText.unsafeClass` (C0, DEL, C1, bidi) as `\uXXXX`, which JSON requires only
    /// for C0: the output is read in terminals (`cat`, `less`) too, and must not act there.
    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where TerminalText.unsafeClass(scalar) != nil:
                out += "\\u" + TerminalText.hex(scalar.value, digits: 4)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
