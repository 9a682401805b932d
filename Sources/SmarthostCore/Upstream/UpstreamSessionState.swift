/// The states of an upstream session and what each one means, kept together like
/// Postfix's `xfer_states[]` table: entering a state sends its command, and every state
/// names its timer and the words a failure in it reads with.
extension UpstreamSession {
    public enum State: Sendable, Equatable, CustomStringConvertible {
        /// Made, not started: `start()` is next.
        case idle
        /// An OAuth2 route: the token comes before any connection, so a token endpoint
        /// that is down does not leave connections open and idle upstream.
        case fetchingToken
        /// The driver looks the host up off the loop.
        case resolving
        /// A TCP connect to one address is in progress; on failure or timeout the next
        /// address is tried.
        case connecting
        /// Implicit TLS (RFC 8314 §3.3): the handshake runs before the greeting.
        case implicitTLSHandshake
        /// Waiting for the 220 greeting (RFC 5321 §3.1).
        case greeting
        /// EHLO sent (RFC 5321 §4.1.1.1).
        case ehlo
        /// HELO sent after EHLO was refused; only when neither TLS nor AUTH is needed.
        case helo
        /// STARTTLS sent, waiting for 220 (RFC 3207 §4).
        case startTLS
        /// The driver runs the TLS handshake after STARTTLS's 220.
        case tlsHandshake
        /// AUTH PLAIN with its initial response sent (RFC 4954 §4, RFC 4616).
        case authPlain
        /// "AUTH LOGIN" sent, waiting for the username challenge.
        case authLogin
        /// Username sent, waiting for the password challenge.
        case authLoginUsername
        /// Password sent, waiting for 235.
        case authLoginPassword
        /// AUTH XOAUTH2/OAUTHBEARER with the token as initial response sent.
        case authOAuth(UpstreamOAuthMechanism)
        /// After an error challenge (334 + JSON), the required empty or %x01 reply sent;
        /// the 535 is next (RFC 7628 §3.2.3).
        case authOAuthErrorAck(UpstreamOAuthMechanism)
        /// The token was refused; the driver fetches a fresh one for one more try.
        case awaitingToken
        /// Idle, able to take a message.
        case ready
        /// MAIL FROM sent (with PIPELINING: MAIL, every RCPT and DATA sent together).
        case mailFrom
        /// Waiting for the reply to the RCPT TO of recipient `index`.
        case rcptTo(index: Int)
        /// DATA sent, waiting for 354.
        case data
        /// Message and end of data sent, waiting for the final reply.
        case dataEnd
        /// A lone "." sent to end a DATA the server accepted when no recipient was
        /// (RFC 2920 §3.1); its reply is read and ignored.
        case dataAbort
        /// RSET sent after a failed transaction.
        case rset
        /// QUIT sent, waiting for 221.
        case quit
        /// Finished: the driver has been told to close.
        case closed

        /// Completes "timeout …" and "connection closed …".
        public var description: String {
            switch self {
            case .idle: "before connecting"
            case .fetchingToken: "while fetching the oauth2 token"
            case .resolving: "while resolving the host"
            case .connecting: "while connecting"
            case .implicitTLSHandshake: "during the TLS handshake"
            case .greeting: "while waiting for the greeting"
            case .ehlo: "while sending EHLO"
            case .helo: "while sending HELO"
            case .startTLS: "while sending STARTTLS"
            case .tlsHandshake: "during the TLS handshake"
            case .authPlain, .authLogin, .authLoginUsername, .authLoginPassword, .authOAuth, .authOAuthErrorAck:
                "while authenticating"
            case .awaitingToken: "while fetching a fresh oauth2 token"
            case .ready: "while idle"
            case .mailFrom: "while sending MAIL FROM"
            case .rcptTo: "while sending RCPT TO"
            case .data: "while sending DATA"
            case .dataEnd: "while sending end of data"
            case .dataAbort: "while ending an empty DATA"
            case .rset: "while sending RSET"
            case .quit: "while sending QUIT"
            case .closed: "after the connection was closed"
            }
        }

        /// The timer the session asks for while in this state.
        public var timeoutKind: UpstreamTimeoutKind {
            switch self {
            case .fetchingToken, .resolving, .connecting: .setup
            case .implicitTLSHandshake, .tlsHandshake: .tlsHandshake
            case .greeting: .greeting
            case .ready: .idle
            case .idle, .closed: .none
            default: .reply
            }
        }

        /// The step a failure in this state is reported as.
        var failureStep: UpstreamFailure.Step {
            switch self {
            case .fetchingToken: .token
            case .idle, .resolving, .connecting: .connect
            case .implicitTLSHandshake: .tls
            case .greeting: .greeting
            case .ehlo, .helo: .ehlo
            case .startTLS, .tlsHandshake: .tls
            case .authPlain, .authLogin, .authLoginUsername, .authLoginPassword, .authOAuth, .authOAuthErrorAck,
                 .awaitingToken: .auth
            case .mailFrom: .mailFrom
            case .rcptTo: .rcptTo
            case .data, .dataAbort: .data
            case .dataEnd: .dataEnd
            case .ready, .rset, .quit, .closed: .protocol
            }
        }

        /// Before the SMTP dialogue: no socket to speak on yet (or TLS owns it).
        var isSetup: Bool {
            switch self {
            case .idle, .fetchingToken, .resolving, .connecting, .implicitTLSHandshake: true
            default: false
            }
        }

        /// States in which a reply from the server is expected.
        var awaitsReply: Bool {
            switch self {
            case .idle, .fetchingToken, .resolving, .connecting, .implicitTLSHandshake, .tlsHandshake,
                 .ready, .closed, .awaitingToken: false
            default: true
            }
        }
    }
}
