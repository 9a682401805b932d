/// `smarthost queue summary`: how much mail waits where and for how long — Postfix's
/// `qshape`, with our org and route as the rows: a stuck route or one org's flood shows at
/// a glance.
public enum QueueSummary {
    /// Upper bounds of the age columns, in minutes (qshape's doubling buckets).
    public static let bucketMinutes: [Int64] = [5, 10, 20, 40, 80, 160, 320, 640, 1280]

    public struct Row: Sendable, Equatable {
        public var org: String
        public var route: String
        public var total: Int
        /// One count per bucket of `bucketMinutes`, then one for older.
        public var buckets: [Int]
        /// Seconds since the oldest message of the row was received.
        public var oldestSeconds: Int64
    }

    /// A TOTAL row first, then one per org and route, most messages first.
    public static func rows(_ envelopes: [SpoolEnvelope], now: Int64) -> [Row] {
        var byKey: [String: Row] = [:]
        var total = Row(org: "TOTAL", route: "", total: 0, buckets: Array(repeating: 0, count: bucketMinutes.count + 1), oldestSeconds: 0)
        for envelope in envelopes {
            let org = envelope.org ?? "-", route = envelope.route ?? "-"
            let key = org + "\u{0}" + route
            var row = byKey[key] ?? Row(org: org, route: route, total: 0, buckets: total.buckets.map { _ in 0 }, oldestSeconds: 0)
            let age = max(now - envelope.receivedAt, 0)
            let bucket = bucketMinutes.firstIndex { age < $0 * 60 } ?? bucketMinutes.count
            row.total += 1
            row.buckets[bucket] += 1
            row.oldestSeconds = max(row.oldestSeconds, age)
            byKey[key] = row
            total.total += 1
            total.buckets[bucket] += 1
            total.oldestSeconds = max(total.oldestSeconds, age)
        }
        let sorted = byKey.values.sorted { a, b in
            a.total != b.total ? a.total > b.total : (a.org, a.route) < (b.org, b.route)
        }
        return [total] + sorted
    }

    public static func text(_ rows: [Row]) -> String {
        var table = [["ORG", "ROUTE", "TOTAL", "OLDEST"] + bucketMinutes.map { "<\($0)m" } + ["older"]]
        for row in rows {
            table.append([TerminalText.escaped(row.org), TerminalText.escaped(row.route), String(row.total),
                          row.total == 0 ? "-" : QueueReport.duration(row.oldestSeconds)] + row.buckets.map(String.init))
        }
        return QueueReport.table(table)
    }

    public static func json(_ rows: [Row]) -> String {
        let objects = rows.map { row in
            "{\"org\": \(QueueReport.string(row.org)), \"route\": \(QueueReport.string(row.route)), "
                + "\"total\": \(row.total), \"oldest_seconds\": \(row.oldestSeconds), \"buckets\": ["
                + zip(bucketMinutes.map { "\($0)" } + ["older"], row.buckets)
                    .map { "{\"under_minutes\": \($0.0 == "older" ? "null" : $0.0), \"count\": \($0.1)}" }
                    .joined(separator: ", ")
                + "]}"
        }
        return "[\n" + objects.map { "  " + $0 }.joined(separator: ",\n") + "\n]\n"
    }
}
