/// What an upstream session reports. These are facts — which step failed, with which
/// reply — never decisions: whether to retry or bounce is the delivery policy's call
/// (Postfix `smtp_trouble.c` keeps that in one place too).

/// The environment failure under an `UpstreamFailure`, as the value the lower layer threw.
public enum UpstreamFailureCause: Sendable, Equatable {
    /// The upstream's name did not resolve.
    case dns(ResolveError)
    /// Every address refused or timed out; one error per address tried, in order.
    case connect([ConnectError])
    /// TLS setup, handshake or certificate verification failed (implicit or after STARTTLS).
    case tls(TLSError)
    /// The OAuth2 token endpoint gave no token.
    case oauth2Token(OAuth2TokenError)
}

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
    /// The typed environment failure behind this one (DNS, connect, TLS), when there was
    /// one, for callers that explain rather than log (`smarthost test`); `detail` already
    /// says it in words.
    public var cause: UpstreamFailureCause?

    public init(step: Step, reply: SMTPReply? = nil, detail: String, mayHaveBeenDelivered: Bool = false,
                permanent: Bool? = nil, cause: UpstreamFailureCause? = nil) {
        self.step = step
        self.reply = reply
        self.detail = detail
        self.mayHaveBeenDelivered = mayHaveBeenDelivered
        self.isPermanent = permanent ?? (reply?.isPermanent ?? false)
        self.cause = cause
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
    /// Write these bytes (through TLS once it is up).
    case write([UInt8])
    /// Run the TLS handshake on the socket, then call `tlsEstablished()`.
    case startTLS
    /// Idle and able to take a message (`send(message:)`) or `quit()`.
    case ready
    /// The upstream refused the bearer token: drop it from the cache, get a fresh one and
    /// call `tokenRefreshed(_:)` (or `tokenFailed(_:)`).
    case needFreshToken
    /// The message given to `send(message:)` is done, one way or the other.
    case messageResult(UpstreamDeliveryResult)
    /// The connection failed outside a transaction (setup, or while idle). No message
    /// can be sent on it; a `.close` follows.
    case sessionFailed(UpstreamFailure)
    /// Close the socket; the session is finished.
    case close

    /// Written bytes are counted, not shown: they may hold an AUTH payload.
    public var description: String {
        switch self {
        case .write(let bytes): "write(\(bytes.count) octets)"
        case .startTLS: "startTLS"
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
    /// Something that is not a line on the wire: "TLS established", "12345 octets of message data".
    case note(String)

    public var description: String {
        switch self {
        case .sent(let line): "C: " + line
        case .received(let reply): reply.lines.enumerated().map { index, text in
            let separator = index == reply.lines.count - 1 ? " " : "-"
            return "S: \(reply.code)\(separator)" + (reply.enhanced.map { $0 + " " } ?? "") + text
        }.joined(separator: "\n")
        case .note(let text): "-- " + text
        }
    }
}
