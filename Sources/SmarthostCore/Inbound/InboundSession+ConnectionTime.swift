/// A bound on one connection's whole life (`limits.max_connection_time`, issue 19): without
/// it a NOOP before each `idle_timeout` holds a slot forever. It is checked only where the
/// session waits for a command (the wait's deadline is cut to it, and every command line is
/// checked before it runs), so a message in DATA is never cut by it: `data_timeout` bounds
/// that phase, and the `421` comes at the next command.
extension InboundSession {
    /// Sent by the driver instead of starting a session when the connection
    /// limit is reached.
    public static func tooManyConnectionsReply(hostname: String) -> SMTPReply {
        SMTPReply(421, "4.7.0", "\(hostname) Error: too many connections")
    }

    /// Sent instead of starting a session when this client (address, or uid on the Unix
    /// socket) has its share of connections open already (`max_connections_per_client`).
    public static func tooManyConnectionsFromClientReply(hostname: String) -> SMTPReply {
        SMTPReply(421, "4.7.0", "\(hostname) Error: too many connections from your address")
    }

    /// RFC 3463 §3.5: X.4.2 "bad connection", as for the other deadlines; a client treats
    /// the 421 as "try again" (RFC 5321 §3.8) and reconnects.
    static func connectionTimeReply(hostname: String) -> SMTPReply {
        SMTPReply(421, "4.4.2", "\(hostname) Error: connection time limit exceeded, reconnect")
    }

    mutating func startConnectionClock() {
        let limit = configuration.connectionTimeMilliseconds
        connectionDeadline = limit > 0 ? configuration.now() + limit : nil
    }

    var isPastConnectionTime: Bool {
        guard let connectionDeadline else { return false }
        return configuration.now() >= connectionDeadline
    }

    /// `421 4.4.2` and close; a transaction not yet in DATA ends with it (the client still
    /// holds that message and retries it).
    mutating func endConnectionTime() {
        commandContext = CommandContext(command: InboundRefusal.timeout)
        close(with: Self.connectionTimeReply(hostname: configuration.hostname))
    }
}
