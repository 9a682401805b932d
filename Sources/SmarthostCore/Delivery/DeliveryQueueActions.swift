/// What the delivery queue asks its driver to do. The queue decides; the driver
/// (`DeliveryScheduler`) does the I/O and reports back with events.
enum DeliveryAction {
    /// Open a connection to this upstream (its `host` is the one the queue picked).
    case open(DeliveryQueue.ConnectionID, UpstreamTarget)
    /// Send a message whose content is in memory, to these recipients.
    case send(DeliveryQueue.ConnectionID, SpoolEnvelope, recipients: [String], content: [UInt8])
    /// Read the message from the spool (a worker thread) for these recipients, then report
    /// `messageRead`.
    case read(DeliveryQueue.ConnectionID, SpoolEnvelope, recipients: [String])
    /// The message read for this connection may go now.
    case transmit(DeliveryQueue.ConnectionID, SpoolID)
    /// Say QUIT and close.
    case quit(DeliveryQueue.ConnectionID)
    /// An outcome to log, count and write to the spool.
    case record(DeliveryRecord)
    /// A change of a route's state to log and show.
    case note(DeliveryNote)
}

/// One settled attempt, for the outcome recorder: everything it logs and writes.
struct DeliveryRecord {
    enum Kind: Equatable {
        case delivered
        case deferred(atMilliseconds: Int64)
        case failed
        /// Some recipients are settled and the next transaction follows at once.
        case progressed
    }

    var kind: Kind
    /// The envelope after this attempt (attempts, done and refused recipients).
    var envelope: SpoolEnvelope
    var decision: DeliveryDecision
    /// The route (every host) and the host this attempt used.
    var route: String
    /// `host:port`, and the host alone (a notice's Remote-MTA).
    var host: String
    var remoteHost: String
    var tls: String?
    var dataReply: SMTPReply?
    var atMilliseconds: Int64
    /// First deferral past `notices.delay_after`: send the sender a delay warning.
    var warnDelay = false
}

/// Route state changes: one log line each, and what `status` and `/metrics` show.
enum DeliveryNote: Equatable {
    /// Every host of the route failed: its mail waits. `first` is false while it stays down.
    case routeDown(route: String, error: String, retryInMilliseconds: Int64, first: Bool)
    case routeUp(route: String, downForMilliseconds: Int64)
    /// One host of a route with several failed; the others carry its mail meanwhile.
    case hostDown(route: String, host: String, error: String, retryInMilliseconds: Int64)
    case hostUp(route: String, host: String, downForMilliseconds: Int64)
    /// The route's secret is missing: its mail is held (logged once per route).
    case held(route: String, reason: String)
    /// The route's pace changed after a throttling reply, or back up after a cool-down.
    case pace(route: String, change: RoutePace.Change, reply: String?)
}
