/// Why `smarthost test` failed, in the words an operator acts on: which step of the
/// dialogue broke, what happened, and what to change. Built from the `UpstreamFailure` the
/// connection reported plus what the probe saw on the wire; pure, so every classification
/// is tested without sockets.
public struct ProbeFailure: Sendable, Equatable, CustomStringConvertible {
    /// The steps of product.md §5, in dialogue order.
    public enum Step: String, Sendable, Equatable, CaseIterable {
        case dns, connect, greeting, ehlo, tlsHandshake, certificate, token, auth, sender, recipient, data, `protocol`

        public var label: String {
            switch self {
            case .dns: "DNS"
            case .connect: "connect"
            case .greeting: "greeting"
            case .ehlo: "EHLO"
            case .tlsHandshake: "TLS handshake"
            case .certificate: "certificate"
            case .token: "oauth2 token"
            case .auth: "AUTH"
            case .sender: "sender (MAIL FROM)"
            case .recipient: "recipient (RCPT TO)"
            case .data: "data"
            case .protocol: "protocol"
            }
        }
    }

    public var step: Step
    /// What happened, with the upstream's reply or the library's reason.
    public var explanation: String
    /// What to change, when we can tell.
    public var hint: String?
    /// What the connection reported, for logs.
    public var underlying: UpstreamFailure

    public init(step: Step, explanation: String, hint: String? = nil, underlying: UpstreamFailure) {
        self.step = step
        self.explanation = explanation
        self.hint = hint
        self.underlying = underlying
    }

    /// "failed at TLS handshake: … — hint".
    public var description: String {
        "failed at \(step.label): \(explanation)" + (hint.map { "\n  hint: \($0)" } ?? "")
    }

    /// What the probe saw besides the failure itself.
    public struct Observations: Sendable, Equatable {
        /// The TCP connection was made.
        public var connected = false
        /// At least one SMTP reply arrived (so the port speaks SMTP in the mode we used).
        public var sawReply = false
        /// Implicit TLS or STARTTLS completed.
        public var tlsEstablished = false
        /// The last command sent, masked ("MAIL FROM:<a@b>", "AUTH PLAIN ********").
        public var lastCommand: String?
        /// The message data went out (the final reply is what is awaited).
        public var dataSent = false
        /// How long the probe waited for the greeting, for the "no greeting" text.
        public var greetingWaitMilliseconds: Int64 = 0

        public init() {}
    }

    static let implicitTLSHint = "the server expects TLS from the first byte (implicit TLS, usually port 465): use tls: implicit"
    static let plainPortHint = "the server speaks plain SMTP on this port: use tls: starttls"

    /// Classifies `failure` on a route in `mode` to `endpoint` ("host:port").
    public static func classify(_ failure: UpstreamFailure, mode: TLSMode, endpoint: String,
                                observed: Observations, oauth: Bool = false) -> ProbeFailure {
        if let explained = classify(reason: failure.reason, failure: failure, endpoint: endpoint) { return explained }
        let make = { (step: Step, hint: String?) in
            ProbeFailure(step: step, explanation: failure.summary, hint: hint, underlying: failure)
        }
        // Connected, yet not one SMTP reply: a plain or STARTTLS client on an implicit-TLS
        // port waits for a greeting that never comes (or reads a TLS record as garbage).
        if observed.connected, !observed.sawReply, !observed.tlsEstablished, mode != .implicit,
           [.greeting, .timeout, .protocol].contains(failure.step) {
            let waited = failure.step == .timeout
                ? "no SMTP greeting from \(endpoint) within \(seconds(observed.greetingWaitMilliseconds))"
                : "no SMTP greeting from \(endpoint): \(failure.summary)"
            return ProbeFailure(step: .greeting, explanation: waited, hint: implicitTLSHint, underlying: failure)
        }
        switch failure.step {
        case .connect: return make(.connect, nil)
        case .greeting: return make(.greeting, nil)
        case .ehlo: return make(.ehlo, nil)
        case .tls:
            return make(.tlsHandshake, failure.reason == .starttlsNotOffered
                ? "the server does not offer STARTTLS here: use its STARTTLS port (587), or tls: implicit on port 465" : nil)
        case .token: return make(.token, nil)
        case .auth: return make(.auth, oauth ? oauthHint(failure) : authHint(failure))
        case .mailFrom:
            return make(.sender, failure.reply == nil ? nil
                : "the upstream refused the envelope sender: set from: to an address this account may send as")
        case .rcptTo: return make(.recipient, nil)
        case .data, .dataEnd: return make(.data, nil)
        case .protocol: return make(.protocol, nil)
        case .timeout:
            if mode == .implicit, !observed.tlsEstablished, failure.reason.map(isHandshakeTimeout) ?? true {
                return make(.tlsHandshake, "no answer to the TLS handshake: is \(endpoint) an implicit-TLS port (usually 465)?")
            }
            if case .timeout(let state)? = failure.reason { return make(step(in: state), nil) }
            return make(step(after: observed), nil)
        }
    }

    /// The failures whose typed reason says more than the step: the environment's own
    /// error values (DNS, connect, TLS, the token endpoint).
    private static func classify(reason: UpstreamFailure.Reason?, failure: UpstreamFailure, endpoint: String) -> ProbeFailure? {
        switch reason {
        case .dnsFailed(let error)?:
            let hint = error.isTemporary ? "the DNS server did not answer; try again, or check /etc/resolv.conf"
                : "check the host name in the route"
            return ProbeFailure(step: .dns, explanation: error.description, hint: hint, underlying: failure)
        case .connectFailed(let errors)?:
            let text = errors.map(\.description).joined(separator: "; ")
            let hint: String
            if errors.contains(where: \.timedOut) {
                hint = "no answer from \(endpoint): the port may be blocked by a firewall (many networks block outgoing 25, 465 and 587)"
            } else {
                hint = "nothing accepts connections on \(endpoint): check the port (587 for STARTTLS, 465 for implicit TLS) "
                    + "and that no firewall rejects it; the port may be blocked"
            }
            return ProbeFailure(step: .connect, explanation: text, hint: hint, underlying: failure)
        case .tlsFailed(let error)?:
            return classify(error, failure: failure)
        case .tokenFailed(let error)?:
            // The step already says "oauth2 token".
            return ProbeFailure(step: .token, explanation: error.detail, hint: tokenHint(error), underlying: failure)
        case .graphRejected?, .graphThrottled?, .graphRouteRefused?, .graphTransportFailed?, .graphMessageTooLarge?:
            return GraphHints.probeFailure(failure)
        default:
            return nil
        }
    }

    private static func isHandshakeTimeout(_ reason: UpstreamFailure.Reason) -> Bool {
        reason == .timeout(.implicitTLSHandshake) || reason == .timeout(.tlsHandshake)
    }

    private static func classify(_ error: TLSError, failure: UpstreamFailure) -> ProbeFailure {
        switch error {
        case .certificate(let certificate):
            return ProbeFailure(step: .certificate, explanation: "certificate verification failed: \(certificate.explanation)",
                                underlying: failure)
        case .peerSpokePlaintext(let firstLine):
            return ProbeFailure(step: .tlsHandshake, explanation: "the server greeted in clear text: \"\(firstLine)\"",
                                hint: plainPortHint + " (or use the implicit-TLS port, usually 465)", underlying: failure)
        case .file(let path, let reason):
            return ProbeFailure(step: .tlsHandshake, explanation: "cannot use ca_file \(path): \(reason)",
                                hint: "ca_file must be a PEM bundle readable by smarthost", underlying: failure)
        default:
            return ProbeFailure(step: .tlsHandshake, explanation: error.description, underlying: failure)
        }
    }

    private static func authHint(_ failure: UpstreamFailure) -> String? {
        if let reply = failure.reply, basicAuthRefused(reply) {
            return "this tenant refuses Basic auth (password AUTH) for SMTP: use oauth2: on this route "
                + "(see the README's Microsoft 365 recipe)"
        }
        if let reply = failure.reply {
            return reply.code == 535 || reply.enhanced == "5.7.8"
                ? "the upstream rejected the username or password: check username and password_file/password_env"
                : nil
        }
        if failure.reason == .plaintextAuthRefused {
            return "use tls: starttls or implicit; allow_plaintext_auth exists only for tls: none on trusted networks"
        }
        return nil
    }

    /// Exchange Online: `550 5.7.30 Basic authentication is not supported for Client
    /// Submission`, or `535 5.7.139` where the tenant turned it off itself.
    static func basicAuthRefused(_ reply: SMTPReply) -> Bool {
        reply.enhanced == "5.7.30" || reply.enhanced == "5.7.139" || reply.text.contains("5.7.139")
            || reply.text.contains("Basic authentication is not supported")
    }

    /// The token was issued but the server refused it.
    private static func oauthHint(_ failure: UpstreamFailure) -> String? {
        guard let reply = failure.reply else { return nil }
        if reply.enhanced == "5.7.3" || reply.text.contains("5.7.3") {
            return "Exchange Online accepted the token's signature but not the app: register the app's service principal "
                + "in Exchange (New-ServicePrincipal -AppId … -ObjectId …), grant it the mailbox (Add-MailboxPermission "
                + "… -AccessRights FullAccess, or SendAs), check that SMTP.SendAsApp has admin consent, that username is "
                + "that mailbox and that tenant is the mailbox's tenant, and that SMTP AUTH is enabled for the mailbox"
        }
        if reply.code == 535 || reply.code == 334 {
            return "the server refused a fresh token too: check that username is the mailbox the token may act for "
                + "(Google: domain-wide delegation of https://mail.google.com/ to the service account's client id; "
                + "Microsoft: the app's mailbox permission)"
        }
        return nil
    }

    /// What to change when the token endpoint said no.
    static func tokenHint(_ error: OAuth2TokenError) -> String? {
        if let code = error.aadstsCode {
            switch code {
            case "AADSTS7000215": return "invalid client secret: use the secret's Value (not its ID), and check that it has not expired"
            case "AADSTS700016": return "no such application in this tenant: check client_id and tenant"
            case "AADSTS90002", "AADSTS900023": return "no such tenant: check tenant (the directory id or a verified domain)"
            case "AADSTS700027", "AADSTS700024": return "the client assertion was refused: upload this certificate to the app registration, and check the clock"
            case "AADSTS7000222": return "the client secret has expired: create a new one"
            default: break
            }
        }
        switch error.error {
        case "invalid_client"?: return "the endpoint does not accept this client: check client_id and the client secret or certificate"
        case "invalid_grant"?:
            return "the grant was refused: a refresh token revoked or expired, a service account without domain-wide "
                + "delegation for this user, or a clock more than a few minutes off"
        case "unauthorized_client"?:
            return "the client may not use this grant: for Google, authorise the service account's client id for "
                + "https://mail.google.com/ under domain-wide delegation"
        case "invalid_scope"?: return "check scope (Microsoft: https://outlook.office365.com/.default)"
        default: break
        }
        if error.httpStatus == nil {
            return "no answer from the token endpoint: check the network, HTTPS_PROXY, and ca_file in the oauth2 block"
        }
        return nil
    }

    /// A timeout's step, from the session state it happened in.
    private static func step(in state: UpstreamSession.State) -> Step {
        switch state {
        case .idle, .resolving: .dns
        case .connecting: .connect
        case .fetchingToken, .awaitingToken: .token
        case .implicitTLSHandshake, .startTLS, .tlsHandshake: .tlsHandshake
        case .greeting: .greeting
        case .ehlo, .helo: .ehlo
        case .authPlain, .authLogin, .authLoginUsername, .authLoginPassword, .authOAuth, .authOAuthErrorAck: .auth
        case .mailFrom: .sender
        case .rcptTo: .recipient
        case .data, .dataEnd, .dataAbort: .data
        case .ready, .rset, .quit, .closed: .protocol
        }
    }

    /// A timeout's step when the failure does not say its state: from the last command sent.
    private static func step(after observed: Observations) -> Step {
        if observed.dataSent { return .data }
        guard let command = observed.lastCommand?.uppercased() else { return .greeting }
        if command.hasPrefix("EHLO") || command.hasPrefix("HELO") { return .ehlo }
        if command.hasPrefix("STARTTLS") { return .tlsHandshake }
        if command.hasPrefix("AUTH") || command == "********" { return .auth }
        if command.hasPrefix("MAIL") { return .sender }
        if command.hasPrefix("RCPT") { return .recipient }
        if command.hasPrefix("DATA") || command == "." { return .data }
        return .protocol
    }

    private static func seconds(_ milliseconds: Int64) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }
}
