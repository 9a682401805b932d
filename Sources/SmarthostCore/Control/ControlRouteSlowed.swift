/// One route running slower than configured because its upstream said "too fast", as
/// `ROUTES` reports it beside the routes that are down: `smarthost status` shows its pace.
public struct ControlRouteSlowed: Sendable, Equatable {
    /// The route as logs name it (`host:port`, every host of a failover list).
    public var route: String
    /// Messages per second allowed now; nil: no rate limit (only fewer connections).
    public var messagesPerSecond: Double?
    public var connections: Int
    /// As `ControlRouteDown.orgs`: set only when another route has the same name.
    public var orgs: [String]

    public init(route: String, messagesPerSecond: Double?, connections: Int, orgs: [String] = []) {
        self.route = route
        self.messagesPerSecond = messagesPerSecond
        self.connections = connections
        self.orgs = orgs
    }

    /// The route as `status` shows it.
    public var label: String { ControlRouteDown.label(route, orgs: orgs) }

    /// One word of the `ROUTES` reply: `slowed=<route>,<messages per second or ->,<connections>[,<org>…]`.
    /// A client that predates it reads only `down=` words, so it skips these.
    public var word: String {
        "slowed=\(ControlRouteDown.encode(route)),\(messagesPerSecond.map { "\($0)" } ?? "-"),\(connections)"
            + orgs.map { "," + ControlRouteDown.encode($0) }.joined()
    }

    public static func parse(_ text: String) -> [ControlRouteSlowed] {
        text.split(separator: " ").compactMap { word in
            guard word.hasPrefix("slowed=") else { return nil }
            let parts = word.dropFirst(7).split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count >= 3, let connections = Int(parts[2]) else { return nil }
            let rate: Double?
            if parts[1] == "-" {
                rate = nil
            } else if let value = Double(parts[1]), value.isFinite, value > 0 {
                rate = value
            } else {
                return nil
            }
            return ControlRouteSlowed(route: ControlRouteDown.decode(parts[0]), messagesPerSecond: rate, connections: connections,
                                      orgs: parts.dropFirst(3).map(ControlRouteDown.decode))
        }
    }

    /// `ROUTES`'s reply text: the down routes' words, then the slowed ones', or `none`.
    public static func routesReply(down: [ControlRouteDown], slowed: [ControlRouteSlowed]) -> String {
        let words = down.map(\.word) + slowed.map(\.word)
        return words.isEmpty ? "none" : words.joined(separator: " ")
    }

    /// `2.5/s, 1 connection` for `status`.
    public var pace: String {
        "\(RoutePace.describe(messagesPerSecond)), \(connections) connection\(connections == 1 ? "" : "s")"
    }
}
