/// A small Prometheus registry owned by the event loop: every metric the relay has is
/// changed on the loop (acceptance, delivery outcomes, route changes) and read there at a
/// scrape, so plain integers suffice — no atomics, no locks, nothing `async`.
///
/// Why not swift-prometheus: its registry copies a family's whole label-set dictionary to
/// add one series, so giving each of 10 000 configured orgs its zero-valued counters (which
/// alerting needs: a rate over a series that does not exist is "no data", not 0) took two
/// minutes at start; and each update re-validated names and took a lock. Here a series is a
/// dictionary entry, added in O(1).
///
/// Not thread-safe by design: use it from the loop thread only.
public final class MetricsRegistry: @unchecked Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// `name{a="1",b="2"}` without the name: the series' identity within its family.
    struct SeriesKey: Hashable, Comparable {
        let text: String

        init(_ labels: [(String, String)]) {
            text = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(MetricsRegistry.escape($0.1))\"" }
                .joined(separator: ",") + "}"
        }

        static func < (a: SeriesKey, b: SeriesKey) -> Bool { a.text < b.text }
    }

    final class Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            self.counts = Array(repeating: 0, count: bounds.count)
        }

        func observe(_ value: Double) {
            if let index = bounds.firstIndex(where: { value <= $0 }) { counts[index] += 1 }
            sum += value
            count += 1
        }
    }

    final class Family {
        let kind: Kind
        let help: String
        var values: [SeriesKey: Double] = [:]
        var histograms: [SeriesKey: Histogram] = [:]

        init(kind: Kind, help: String) {
            self.kind = kind
            self.help = help
        }
    }

    private var families: [String: Family] = [:]

    public init() {}

    private func family(_ name: String, _ kind: Kind, _ help: String) -> Family {
        if let family = families[name] {
            precondition(family.kind == kind, "metric \(name) registered as \(family.kind), used as \(kind)")
            return family
        }
        let family = Family(kind: kind, help: help)
        families[name] = family
        return family
    }

    /// Creates the series at zero if it does not exist yet.
    public func declare(_ name: String, _ kind: Kind, help: String, labels: [(String, String)] = [], buckets: [Double] = []) {
        let family = family(name, kind, help)
        let key = SeriesKey(labels)
        if kind == .histogram {
            if family.histograms[key] == nil { family.histograms[key] = Histogram(bounds: buckets) }
        } else if family.values[key] == nil {
            family.values[key] = 0
        }
    }

    public func increment(_ name: String, help: String, labels: [(String, String)] = [], by amount: Double = 1) {
        family(name, .counter, help).values[SeriesKey(labels), default: 0] += amount
    }

    public func set(_ name: String, help: String, labels: [(String, String)] = [], _ value: Double) {
        family(name, .gauge, help).values[SeriesKey(labels)] = value
    }

    public func observe(_ name: String, help: String, labels: [(String, String)] = [], buckets: [Double], _ value: Double) {
        let family = family(name, .histogram, help)
        let key = SeriesKey(labels)
        let histogram = family.histograms[key] ?? Histogram(bounds: buckets)
        family.histograms[key] = histogram
        histogram.observe(value)
    }

    /// The value of one series (tests and `STATUS=`); nil when it does not exist.
    public func value(_ name: String, labels: [(String, String)] = []) -> Double? {
        families[name]?.values[SeriesKey(labels)]
    }

    /// The text exposition format 0.0.4: families by name, series by labels.
    public func exposition() -> [UInt8] {
        var out = ""
        for name in families.keys.sorted() {
            let family = families[name]!
            out += "# HELP \(name) \(Self.escapeHelp(family.help))\n# TYPE \(name) \(family.kind.rawValue)\n"
            if family.kind == .histogram {
                for key in family.histograms.keys.sorted() {
                    out += Self.histogramLines(name, key, family.histograms[key]!)
                }
            } else {
                for key in family.values.keys.sorted() {
                    out += "\(name)\(key.text) \(Self.format(family.values[key]!))\n"
                }
            }
        }
        return Array(out.utf8)
    }

    private static func histogramLines(_ name: String, _ key: SeriesKey, _ histogram: Histogram) -> String {
        // `le` joins the series' own labels: {org="a",le="0.5"}.
        func withLE(_ le: String) -> String {
            key.text.isEmpty ? "{le=\"\(le)\"}" : String(key.text.dropLast()) + ",le=\"\(le)\"}"
        }
        var out = ""
        var cumulative = 0
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            cumulative += count
            out += "\(name)_bucket\(withLE(format(bound))) \(cumulative)\n"
        }
        out += "\(name)_bucket\(withLE("+Inf")) \(histogram.count)\n"
        out += "\(name)_sum\(key.text) \(format(histogram.sum))\n"
        out += "\(name)_count\(key.text) \(histogram.count)\n"
        return out
    }

    /// Integers without a fraction (counters read better), others as Swift prints them.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// Label values: backslash, double quote and line feed escaped; HELP text: the same
    /// but the quote (exposition format 0.0.4).
    static func escape(_ value: String, quotes: Bool = true) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"" where quotes: out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func escapeHelp(_ text: String) -> String {
        escape(text, quotes: false)
    }
}
