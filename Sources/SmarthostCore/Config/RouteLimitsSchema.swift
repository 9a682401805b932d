/// A route's failover hosts and provider limits (issue 15): `host: [a, b]`, `rate:`,
/// `connections:`, `max_recipients_per_message:`.
extension RelayConfig.Schema {
    static let routeLimitKeys = ["rate", "connections", "max_recipients_per_message"]

    /// `host:` as one name or a list, primary first; every name is checked.
    mutating func decodeUpstreamHosts(_ section: Section) -> [String]? {
        guard let field = section.field("host") else {
            reader.missing(section, "host", "required for a custom route")
            return nil
        }
        let items: [(text: String, path: String, line: Int?)]
        if case Node.sequence = field.node {
            guard let list = reader.strings(field) else { return nil }
            if list.isEmpty {
                reader.report(field.line, field.path, "expected at least one host")
                return nil
            }
            items = list
        } else {
            guard let text = reader.string(field) else { return nil }
            items = [(text, field.path, field.line)]
        }
        var hosts: [String] = []
        for item in items {
            var text = item.text
            if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
            guard RelayConfig.Schema.isHostname(text) || CIDRBlock.ipv4Bytes(text) != nil
                || CIDRBlock.ipv6Bytes(text) != nil else {
                reader.report(item.line ?? field.line, item.path, "\(text) is not a host name or IP address")
                return nil
            }
            if hosts.contains(text) {
                reader.report(item.line ?? field.line, item.path, "\(text) is listed twice")
                return nil
            }
            hosts.append(text)
        }
        return hosts
    }

    mutating func decodeLimits(_ section: Section) -> RouteLimits {
        var limits = RouteLimits()
        if let field = section.field("rate"), let text = reader.string(field) {
            if let rate = Self.messagesPerSecond(text) {
                limits.messagesPerSecond = rate
            } else {
                reader.report(field.line, field.path, "\(text) is not a rate (e.g. 30/min, 14/s, 10000/h)")
            }
        }
        if let field = section.field("connections"), let value = reader.integer(field, in: 1...1000) {
            limits.connections = Int(value)
        }
        if let field = section.field("max_recipients_per_message"), let value = reader.integer(field, in: 1...100_000) {
            limits.maxRecipientsPerMessage = Int(value)
        }
        return limits
    }

    /// `N/s`, `N/min`, `N/h` (also `N/sec`, `N/m`, `N/hour`, and a decimal N) → per second.
    static func messagesPerSecond(_ text: String) -> Double? {
        let parts = String(text.filter { $0 != " " }).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Double(parts[0]), count > 0, count.isFinite else { return nil }
        switch parts[1].lowercased() {
        case "s", "sec", "second": return count
        case "m", "min", "minute": return count / 60
        case "h", "hour": return count / 3600
        default: return nil
        }
    }
}
