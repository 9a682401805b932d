import Glibc

/// What `smarthost queue list` and `queue show` print, from the spool alone (they never
/// need the daemon: reading takes no lock and changes nothing).
///
/// `list` prints one message per line starting with its id (the contract in product.md
/// §5), in aligned columns; the last column is the free-form last error, or for a dead
/// letter the failure reason with the upstream's reply.
public enum QueueReport {
    /// Messages of one area, oldest first, optionally of one org ("-" selects the host
    /// level, i.e. messages that no org claimed).
    public static func load(_ spool: Spool, area: SpoolArea, org: String? = nil) throws(SpoolError) -> [SpoolEnvelope] {
        let all = try spool.list(area)
        guard let org else { return all }
        return all.filter { ($0.org ?? "-") == org }
    }

    // MARK: list

    /// The column table; `header` adds a title line (the CLI does so only on a terminal,
    /// so a pipe sees nothing but message lines).
    /// `routesDown` (from the daemon, by upstream): a message waiting behind a down route
    /// shows that route's error and retry time, not "never tried".
    public static func list(_ envelopes: [SpoolEnvelope], area: SpoolArea, now: Int64, header: Bool = false,
                            routesDown: [ControlRouteDown] = []) -> String {
        var rows: [[String]] = []
        if header {
            rows.append(area == .failed
                ? ["ID", "AGE", "SIZE", "ORG", "ROUTE", "SENDER", "RECIPIENTS", "TRIES", "FAILED", "REASON"]
                : ["ID", "AGE", "SIZE", "ORG", "ROUTE", "SENDER", "RECIPIENTS", "TRIES", "NEXT", "LAST ERROR"])
        }
        // Two routes may share a name (the same hosts, each org's own credential): the one an
        // envelope waits behind is the one of its org.
        for envelope in envelopes {
            let down = envelope.route.flatMap { route in routesDown.first { $0.holds(route: route, org: envelope.org) } }
            rows.append(row(envelope, area: area, now: now, routeDown: down))
        }
        return table(rows)
    }

    static func row(_ envelope: SpoolEnvelope, area: SpoolArea, now: Int64, routeDown: ControlRouteDown? = nil) -> [String] {
        let timing: String
        let problem: String
        if area == .failed || envelope.failure != nil {
            timing = envelope.failedAt.map { duration(now - $0) + " ago" } ?? "-"
            problem = envelope.failure ?? envelope.lastError ?? "-"
        } else if envelope.held {
            timing = "held"
            problem = envelope.lastError ?? "-"
        } else if let routeDown, envelope.nextAttemptAt <= now + routeDown.retryInSeconds {
            timing = "in " + duration(routeDown.retryInSeconds)
            problem = "route down: " + routeDown.error
        } else {
            timing = envelope.nextAttemptAt <= now ? "now" : "in " + duration(envelope.nextAttemptAt - now)
            problem = envelope.lastError ?? "-"
        }
        // Everything but the id and numbers came from outside (a header, an upstream's reply):
        // escaped, so no byte of it can drive the operator's terminal.
        return [envelope.id.rawValue, duration(now - envelope.receivedAt), size(envelope.size),
                TerminalText.escaped(envelope.org ?? "-"), TerminalText.escaped(envelope.route ?? "-"),
                TerminalText.escaped("<" + envelope.sender + ">"), TerminalText.escaped(recipients(envelope)),
                String(envelope.attempts), timing, TerminalText.escaped(ControlReply.singleLine(problem))]
    }

    /// The first recipient still pending (or the first), and how many more.
    static func recipients(_ envelope: SpoolEnvelope) -> String {
        let pending = envelope.pendingRecipients.isEmpty ? envelope.recipients : envelope.pendingRecipients
        guard let first = pending.first else { return "-" }
        return pending.count > 1 ? "\(first) +\(pending.count - 1)" : first
    }

    /// Left-aligned columns two spaces apart; the last column is not padded.
    static func table(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        var out = ""
        for row in rows {
            var line = ""
            for (index, cell) in row.enumerated() {
                line += cell
                if index < row.count - 1 { line += String(repeating: " ", count: widths[index] - cell.count + 2) }
            }
            out += line + "\n"
        }
        return out
    }

    // MARK: show

    /// The envelope and delivery state, then the message's header section (or the whole
    /// message with `body`), line ends shown as plain newlines.
    public static func show(_ envelope: SpoolEnvelope, message: [UInt8], now: Int64, body: Bool = false) -> String {
        var fields: [(String, String)] = [("id", envelope.id.rawValue), ("status", status(envelope, now: now))]
        fields.append(("received", "\(timestamp(envelope.receivedAt)) (\(duration(now - envelope.receivedAt)) ago)"))
        if envelope.queuedAt != envelope.receivedAt { fields.append(("requeued", timestamp(envelope.queuedAt))) }
        fields.append(("sender", "<\(envelope.sender)>"))
        for recipient in envelope.recipients {
            let done = envelope.doneRecipients.contains(recipient) ? " (delivered)" : ""
            fields.append(("recipient", "<\(recipient)>\(done)"))
        }
        fields.append(("org", envelope.org.map { "\($0) (\(envelope.layer ?? "?") settings)" } ?? "- (\(envelope.layer ?? "host") settings)"))
        fields.append(("route", envelope.route ?? "-"))
        fields.append(("size", "\(envelope.size) bytes"))
        fields.append(("client", "\(envelope.clientAddress) (helo \(envelope.heloName))"))
        fields.append(("attempts", String(envelope.attempts)))
        if envelope.failure == nil {
            fields.append(("next attempt", envelope.nextAttemptAt <= now ? "now" : "\(timestamp(envelope.nextAttemptAt)) (in \(duration(envelope.nextAttemptAt - now)))"))
        }
        if let lastError = envelope.lastError { fields.append(("last error", ControlReply.singleLine(lastError))) }
        if let failedAt = envelope.failedAt { fields.append(("failed", "\(timestamp(failedAt)) (\(duration(now - failedAt)) ago)")) }
        if let failure = envelope.failure { fields.append(("reason", ControlReply.singleLine(failure))) }
        let width = max(fields.map(\.0.count).max() ?? 0, "next attempt".count)  // same layout for every message
        var out = fields.map {
            "\($0.0):" + String(repeating: " ", count: width - $0.0.count + 1) + TerminalText.escaped($0.1) + "\n"
        }.joined()
        out += "\n" + text(body ? message : headerSection(message))
        if !out.hasSuffix("\n") { out += "\n" }
        return out
    }

    static func status(_ envelope: SpoolEnvelope, now: Int64) -> String {
        if envelope.failure != nil { return "dead letter" }
        if envelope.held { return "held (queue release to deliver)" }
        if envelope.attempts == 0 { return "queued" }
        return envelope.nextAttemptAt <= now ? "deferred, due now" : "deferred"
    }

    /// Up to and including the empty line that ends the header section (RFC 5322 §2.1).
    static func headerSection(_ message: [UInt8]) -> [UInt8] {
        var index = 0
        var lineStart = 0
        while index < message.count {
            if message[index] == UInt8(ascii: "\n") {
                let line = message[lineStart..<index]
                if line.isEmpty || (line.count == 1 && line.first == UInt8(ascii: "\r")) {
                    return Array(message[..<lineStart])
                }
                lineStart = index + 1
            }
            index += 1
        }
        return message
    }

    /// Message bytes for a terminal: CRLF becomes LF, other control bytes become "?", and
    /// C1 controls (U+0080–U+009F, an 8-bit CSI among them) are escaped too.
    static func text(_ bytes: [UInt8]) -> String {
        var cleaned: [UInt8] = []
        cleaned.reserveCapacity(bytes.count)
        for (index, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "\r"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { continue }
            if byte < 0x20 && byte != UInt8(ascii: "\n") && byte != UInt8(ascii: "\t") || byte == 0x7F {
                cleaned.append(UInt8(ascii: "?"))
            } else {
                cleaned.append(byte)
            }
        }
        return TerminalText.escaped(String(decoding: cleaned, as: UTF8.self), keepNewlines: true, keepTabs: true)
    }

    // MARK: units

    /// "45s", "12m", "3h05m", "2d04h": two units at most, for a column.
    public static func duration(_ seconds: Int64) -> String {
        let s = max(seconds, 0)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86_400 { return "\(s / 3600)h" + twoDigits((s % 3600) / 60) + "m" }
        return "\(s / 86_400)d" + twoDigits((s % 86_400) / 3600) + "h"
    }

    /// "812", "4.2K", "35M" (binary units, as in the size limits of the config).
    public static func size(_ bytes: Int) -> String {
        if bytes < 1024 { return String(bytes) }
        let units = ["K", "M", "G", "T"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if value < 10 {
            let tenths = Int((value * 10).rounded())
            return tenths % 10 == 0 || tenths >= 100 ? "\(tenths / 10)\(units[unit])" : "\(tenths / 10).\(tenths % 10)\(units[unit])"
        }
        return "\(Int(value.rounded()))\(units[unit])"
    }

    /// "2030-01-01 00:00:00 UTC".
    public static func timestamp(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return String(seconds) }
        return "\(parts.tm_year + 1900)-\(twoDigits(Int64(parts.tm_mon + 1)))-\(twoDigits(Int64(parts.tm_mday))) "
            + "\(twoDigits(Int64(parts.tm_hour))):\(twoDigits(Int64(parts.tm_min))):\(twoDigits(Int64(parts.tm_sec))) UTC"
    }

    private static func twoDigits(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : String(value)
    }
}
