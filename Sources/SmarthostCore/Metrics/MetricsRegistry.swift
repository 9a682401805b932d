/// A small Prometheus registry owned by the event loop: every metric the relay has is
/// changed on the loop (acceptance, delivery outcomes, route changes) and read there at a
/// scrape, so plain integers suffice — no atomics, no locks, nothing `async`. A scrape
/// copies a `Snapshot` on the loop and renders its text on another thread.
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
        snapshot().exposition()
    }

    /// Every value copied out, unformatted and unsorted: what a scrape costs the loop (one
    /// copy per series). Formatting and sorting, the larger part, run on `exposition()`'s
    /// caller's thread.
    public func snapshot() -> Snapshot {
        Snapshot(families: families.map { name, family in
            Snapshot.Family(name: name, kind: family.kind, help: family.help,
                            values: family.values.map { ($0.key.text, $0.value) },
                            histograms: family.histograms.map {
                                ($0.key.text, HistogramValues(bounds: $0.value.bounds, counts: $0.value.counts,
                                                              sum: $0.value.sum, count: $0.value.count))
                            })
        })
    }

    struct HistogramValues: Sendable {
        let bounds: [Double]
        let counts: [Int]
        let sum: Double
        let count: Int
    }

    /// The registry's values at one moment, owned by no thread.
    public struct Snapshot: Sendable {
        struct Family: Sendable {
            let name: String
            let kind: Kind
            let help: String
            let values: [(key: String, value: Double)]
            let histograms: [(key: String, histogram: HistogramValues)]
        }

        let families: [Family]

        /// The text exposition format 0.0.4: families by name, series by labels.
        public func exposition() -> [UInt8] {
            var out = ""
            for family in families.sorted(by: { $0.name < $1.name }) {
                let name = family.name
                out += "# HELP \(name) \(MetricsRegistry.escapeHelp(family.help))\n# TYPE \(name) \(family.kind.rawValue)\n"
                if family.kind == .histogram {
                    for (key, histogram) in family.histograms.sorted(by: { $0.key < $1.key }) {
                        out += MetricsRegistry.histogramLines(name, key, histogram)
                    }
                } else {
                    for (key, value) in family.values.sorted(by: { $0.key < $1.key }) {
                        out += "\(name)\(key) \(MetricsRegistry.format(value))\n"
                    }
                }
            }
            return Array(out.utf8)
        }

        /// How many series (a histogram counts once), for tests and the scrape log.
        public var seriesCount: Int { families.reduce(0) { $0 + $1.values.count + $1.histograms.count } }
    }

    fileprivate static func histogramLines(_ name: String, _ keyText: String, _ histogram: HistogramValues) -> String {
        // `le` joins the series' own labels: {org="a",le="0.5"}.
        func withLE(_ le: String) -> String {
            keyText.isEmpty ? "{le=\"\(le)\"}" : String(keyText.dropLast()) + ",le=\"\(le)\"}"
        }
        var out = ""
        var cumulative = 0
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            cumulative += count
            out += "\(name)_bucket\(withLE(format(bound))) \(cumulative)\n"
        }
        out += "\(name)_bucket\(withLE("+Inf")) \(histogram.count)\n"
        out += "\(name)_sum\(keyText) \(format(histogram.sum))\n"
        out += "\(name)_count\(keyText) \(histogram.count)\n"
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
