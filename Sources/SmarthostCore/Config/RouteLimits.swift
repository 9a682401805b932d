/// A route's provider limits. nil: no limit of that kind (the queue's defaults apply).
public struct RouteLimits: Sendable, Equatable {
    /// Messages per second, on average (`rate: 30/min`).
    public var messagesPerSecond: Double?
    /// Connections at once to this route (`connections:`), instead of `queue.connections_per_route`.
    public var connections: Int?
    /// Recipients per upstream transaction (`max_recipients_per_message:`); an envelope with
    /// more is sent as several transactions.
    public var maxRecipientsPerMessage: Int?

    public init(messagesPerSecond: Double? = nil, connections: Int? = nil, maxRecipientsPerMessage: Int? = nil) {
        self.messagesPerSecond = messagesPerSecond
        self.connections = connections
        self.maxRecipientsPerMessage = maxRecipientsPerMessage
    }
}
