/// What an upstream session reports. These are facts — which step failed, with which
/// reply — never decisions: whether to retry or bounce is the delivery policy's call
/// (Postfix `smtp_trouble.c` keeps that in one place too).

/// Why a connection, or a message on it, did not get through.
public struct UpstreamFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Step: String, Sendable, Equatable, CaseIterable {
        case connect, greeting, ehlo, tls, token, auth, mailFrom, rcptTo, data, dataEnd, `protocol`, timeout

        /// How the step reads in a sentence: "AUTH rejected: …".
        public var label: String {
            switch self {
            case .connect: "connection"
            case .greeting: "greeting"
            case .ehlo: "EHLO"
            case .tls: "STARTTLS"
            case .token: "oauth2 token"
            case .auth: "AUTH"
            case .mailFrom: "MAIL FROM"
            case .rcptTo: "RCPT TO"
            case .data: "DATA"
            case .dataEnd: "end of data"
            case .protocol: "protocol"
            case .timeout: "timeout"
            }
        }
    }

    public var step: Step
    /// The upstream's reply when it refused; nil for local decisions, timeouts and closes.
    public var reply: SMTPReply?
    /// Plain words, e.g. "server does not offer STARTTLS" or
    /// "timeout while sending end of data". Never contains a credential.
    public var detail: String
    /// The whole message was sent but the final reply never came (connection lost or
    /// timeout after end of data): the upstream may have taken it. A retry may deliver a
    /// duplicate (RFC 1047), which the policy should log.
    public var mayHaveBeenDelivered: Bool
    /// Retrying cannot help: a 5xx reply, or a local refusal that stands for one (a
    /// server without SMTPUTF8, a message over the announced SIZE).
    public var isPermanent: Bool
    /// What happened, as a value, for callers that explain rather than log (`smarthost
    /// test`); `detail` says it in words. nil only for failures made outside the session.
    public var reason: Reason?
    /// The upstream said when to come back (HTTP `Retry-After`, RFC 9110 §10.2.3): the
    /// policy defers by exactly this instead of its own schedule. nil for SMTP.
    public var retryAfterMilliseconds: Int64?

    public init(step: Step, reply: SMTPReply? = nil, detail: String, mayHaveBeenDelivered: Bool = false,
                permanent: Bool? = nil, reason: Reason? = nil) {
        self.step = step
        self.reply = reply
        self.detail = detail
        self.mayHaveBeenDelivered = mayHaveBeenDelivered
        self.isPermanent = permanent ?? (reply?.isPermanent ?? false)
        self.reason = reason
    }

    /// The driver's last word for a message whose connection ended without the session
    /// reporting on it.
    static func connectionLost(to endpoint: String) -> UpstreamFailure {
        UpstreamFailure(step: .protocol, detail: "connection to \(endpoint) lost", reason: .connectionLost)
    }

    /// One line for logs, dead letters and `smarthost test`:
    /// "AUTH rejected: 535 5.7.8 Authentication credentials invalid".
    public var summary: String {
        var text = reply.map { "\(step.label) rejected: \($0.description)" } ?? detail
        if mayHaveBeenDelivered { text += " (the message may have been delivered)" }
        return text
    }

    public var description: String { summary }
}

/// One recipient and the upstream's answer to its RCPT TO.
public struct UpstreamRecipientResult: Sendable, Equatable {
    public var recipient: String
    public var reply: SMTPReply

    public init(recipient: String, reply: SMTPReply) {
        self.recipient = recipient
        self.reply = reply
    }
}

/// The outcome of one `send(message:)`.
public struct UpstreamDeliveryResult: Sendable, Equatable {
    /// Recipients whose RCPT TO got 2xx.
    public var accepted: [UpstreamRecipientResult] = []
    /// Recipients refused at RCPT TO, each with its reply: they failed on their own,
    /// whatever happened to the others (RFC 5321 §3.3).
    public var refused: [UpstreamRecipientResult] = []
    /// The reply to end of data, when it came.
    public var dataReply: SMTPReply?
    /// Set when the transaction as a whole failed (MAIL, no recipient accepted, DATA,
    /// end of data, timeout, lost connection). nil means the accepted recipients are delivered.
    public var failure: UpstreamFailure?

    public init(accepted: [UpstreamRecipientResult] = [], refused: [UpstreamRecipientResult] = [],
                dataReply: SMTPReply? = nil, failure: UpstreamFailure? = nil) {
        self.accepted = accepted
        self.refused = refused
        self.dataReply = dataReply
        self.failure = failure
    }

    /// Recipients the upstream has taken responsibility for.
    public var delivered: [String] { failure == nil ? accepted.map(\.recipient) : [] }
}

/// What the driver must do after an event, in order.
public enum UpstreamAction: Sendable, Equatable, CustomStringConvertible {
    /// Get the route's OAuth2 token, then call `tokenFetched(_:)` or `tokenFailed(_:)`.
    case fetchToken
    /// Look `host` up, then call `resolved(_:)`.
    case resolve(host: String, port: UInt16)
    /// Open a TCP connection to this address, abandoning any attempt still in progress,
    /// then call `connected()` or `connectFailed(_:)`.
    case connect(SocketAddress)
    /// Run the TLS handshake on the socket (implicit TLS, or after STARTTLS's 220), then
    /// call `tlsEstablished(_:)`, `tlsHandshakeProgressed()` or `tlsFailed(_:)`.
    case startTLS
    /// (Re)arm the one timer for this monotonic deadline in milliseconds, replacing any
    /// armed before; nil: no timer. Call `timedOut()` when it fires. Comes first in a list,
    /// so a nested event's timer (the driver acting on `.ready` at once) wins.
    case armTimer(deadline: Int64?)
    /// Write these bytes (through TLS once it is up).
    case write([UInt8])
    /// Idle and able to take a message (`send(message:)`) or `quit()`.
    case ready
    /// The upstream refused the bearer token: drop it from the cache, get a fresh one and
    /// call `tokenFetched(_:)` (or `tokenFailed(_:)`).
    case needFreshToken
    /// The message given to `send(message:)` is done, one way or the other.
    case messageResult(UpstreamDeliveryResult)
    /// The connection failed outside a transaction (setup, or while idle). No message
    /// can be sent on it; a `.close` follows.
    case sessionFailed(UpstreamFailure)
    /// Close the socket (after writing what is queued), or stop connecting; the session
    /// is finished.
    case close

    /// Written bytes are counted, not shown: they may hold an AUTH payload.
    public var description: String {
        switch self {
        case .fetchToken: "fetchToken"
        case .resolve(let host, let port): "resolve(\(host):\(port))"
        case .connect(let address): "connect(\(address))"
        case .startTLS: "startTLS"
        case .armTimer(let deadline): "armTimer(\(deadline.map(String.init) ?? "none"))"
        case .write(let bytes): "write(\(bytes.count) octets)"
        case .ready: "ready"
        case .needFreshToken: "needFreshToken"
        case .messageResult(let result): "messageResult(\(result.failure?.summary ?? "ok"))"
        case .sessionFailed(let failure): "sessionFailed(\(failure.summary))"
        case .close: "close"
        }
    }
}

/// One line of the dialogue for display (`smarthost test`), secrets already masked.
public enum UpstreamTranscriptLine: Sendable, Equatable, CustomStringConvertible {
    /// A command we sent; AUTH payloads are "********".
    case sent(String)
    case received(SMTPReply)
    /// The TCP connection to this address is up.
    case connected(String)
    /// TLS is up; the negotiated version and cipher when the driver knows them.
    case tlsEstablished(String?)
    /// The message data went out, this many octets; the final reply is next.
    case dataSent(Int)
    /// Anything else worth showing: the token, an error challenge.
    case note(String)

    public var description: String {
        switch self {
        case .sent(let line): "C: " + line
        case .received(let reply): reply.lines.enumerated().map { index, text in
            let separator = index == reply.lines.count - 1 ? " " : "-"
            return "S: \(reply.code)\(separator)" + (reply.enhanced.map { $0 + " " } ?? "") + text
        }.joined(separator: "\n")
        case .connected(let address): "-- connected to \(address)"
        case .tlsEstablished(let negotiated): "-- TLS established" + (negotiated.map { ": " + $0 } ?? "")
        case .dataSent(let octets): "-- \(octets) octets of message data"
        case .note(let text): "-- " + text
        }
    }
}
