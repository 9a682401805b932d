/// What the delivery queue asks its driver to do. The queue decides; the driver
/// (`DeliveryDriver`) does the I/O and reports back with events. A message reaches a
/// connection one way only, `.send`: at once from memory, or in answer to the spool read
/// (`.read`, then the `messageRead` event carrying the prepared message).
enum DeliveryAction {
    /// Open a connection to this upstream (its `host` is the one the queue picked).
    case open(DeliveryQueue.ConnectionID, UpstreamTarget)
    /// Hand the message, prepared for its upstream, to the connection.
    case send(DeliveryQueue.ConnectionID, SpoolID, UpstreamMessage)
    /// Read the message from the spool (a worker thread) and prepare it for these
    /// recipients, then report `messageRead` with it.
    case read(DeliveryQueue.ConnectionID, SpoolEnvelope, recipients: [String])
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
        /// Next attempt at this wall-clock time (what the spool keeps).
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
    /// Wall clock: the log line's delay, the notice's date.
    var atMilliseconds: Int64
    /// First deferral past `notices.delay_after`: send the sender a delay warning.
    var warnDelay = false
}

/// Route state changes: one log line each, and what `status` and `/metrics` show. `route`
/// and `host` name them as `status` does (`RouteLabel`): `host:port`, with the orgs when
/// another credential's route goes to the same hosts, so two tenants' routes never share a
/// `smarthost_route_up` series.
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
