/// The seam every transport implements (SMTP today, Microsoft Graph next, issue 22): take
/// one message at a time for one target, report one outcome for each. The delivery driver
/// and `smarthost test` own connections only through it, so a transport is added by writing
/// a class that keeps these promises and a case in `UpstreamConnectionFactory`.
///
/// The promises, in the order events come (always through the owner's
/// `upstreamConnection(_:_:)`, never from inside the call that caused them when that would
/// re-enter the owner mid-action — `start()` may report `.closed` at once, as a failed
/// connect does):
/// - `.ready`: idle, authenticated if the target authenticates, and `canSend` is true: the
///   owner may call `send` (or `quit`). Said again after each `.finished` when the
///   connection can take another message.
/// - `.finished(id, result)`: exactly one per `send`, for the id given to it. At most one
///   message is in flight per connection; a connection that dies with a message in hand
///   reports it here (`.notSent`, or the transaction's result so far) before `.closed`.
/// - `.closed(failure)`: exactly once, last; nothing follows. `failure` is set when the
///   connection failed before it could take a message (token, DNS, connect, TLS, AUTH, a
///   refused greeting) or while idle; nil for a polite or requested close.
///
/// The upstream only reports facts (`UpstreamSendResult`, `UpstreamFailure` with its typed
/// `Reason`); whether that means delivered, deferred, dead letter or route down is
/// `DeliveryPolicy`'s alone.
protocol UpstreamConnection: AnyObject {
    /// The owner's name for it (the queue's connection id).
    var serial: UInt64 { get }
    var target: UpstreamTarget { get }
    /// Whether `send` may be called now (ready, no message in hand, not closing).
    var canSend: Bool { get }
    /// The negotiated security of the channel for the delivery log (`TLSv1.3 TLS_AES_…`).
    var tlsDescription: String? { get }
    /// How long `connect`, `tls` and `auth` took, once each per connection (`/metrics`).
    var onStep: ((String, Double) -> Void)? { get set }
    /// Each line of the dialogue as it happens (`smarthost test`); transports without a
    /// line dialogue report notes.
    var onTranscript: ((UpstreamTranscriptLine) -> Void)? { get set }

    /// Begins: token, DNS, connect, TLS, greeting, AUTH … up to `.ready` or `.closed`.
    func start()
    /// Hands over one message; only when `canSend`. Its outcome comes as `.finished(messageID, …)`.
    func send(messageID: SpoolID, message: UpstreamMessage)
    /// Polite close of an idle connection (QUIT for SMTP); mid-setup or busy: `close()`.
    func quit()
    /// Closes at once; a message in hand still gets its `.finished` first.
    func close()
}

/// What a connection reports to its owner (see `UpstreamConnection` for the promises).
enum UpstreamConnectionEvent {
    case ready
    case finished(SpoolID, UpstreamSendResult)
    case closed(UpstreamFailure?)
}

protocol UpstreamConnectionOwner: AnyObject {
    func upstreamConnection(_ connection: any UpstreamConnection, _ event: UpstreamConnectionEvent)
}

/// What came of one `send`, as the upstream saw it.
public enum UpstreamSendResult: Sendable {
    /// The transaction ran: per-recipient replies, the final reply, or the failure that ended it.
    case transaction(UpstreamDeliveryResult)
    /// The message never went out: the connection failed before or as it took it.
    case notSent(UpstreamFailure)
}

/// Makes the connection for a target, by its transport.
protocol UpstreamConnecting {
    func connection(serial: UInt64, target: UpstreamTarget, tlsContext: @escaping () throws -> TLSContext,
                    owner: any UpstreamConnectionOwner) -> any UpstreamConnection
}

/// The one place a transport is chosen: the delivery driver and `smarthost test` both make
/// their connections here.
struct UpstreamConnectionFactory: UpstreamConnecting {
    let loop: EventLoop
    let resolver: HostResolver
    let tokens: OAuth2TokenBroker

    func connection(serial: UInt64, target: UpstreamTarget, tlsContext: @escaping () throws -> TLSContext,
                    owner: any UpstreamConnectionOwner) -> any UpstreamConnection {
        switch target.transport {
        case .smtp:
            return DeliveryConnection(serial: serial, target: target, loop: loop, resolver: resolver,
                                      tlsContext: tlsContext, tokens: tokens, owner: owner)
        case .graph:
            // No socket and no TLS context of ours: libcurl does HTTPS (`Upstream/Graph/`).
            return GraphConnection(serial: serial, target: target, loop: loop, tokens: tokens, owner: owner)
        }
    }
}
