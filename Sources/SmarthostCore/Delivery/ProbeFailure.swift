/// Why `smarthost test` failed, in the words an operator acts on: which step of the
/// dialogue broke, what happened, and what to change. Built from the `UpstreamFailure` the
/// connection reported plus what the probe saw on the wire; pure, so every classification
/// is tested without sockets.
public struct ProbeFailure: Sendable, Equatable, CustomStringConvertible {
    /// The steps of product.md §5, in dialogue order.
    public enum Step: String, Sendable, Equatable, CaseIterable {
        case dns, connect, greeting, ehlo, tlsHandshake, certificate, auth, sender, recipient, data, `protocol`

        public var label: String {
            switch self {
            case .dns: "DNS"
            case .connect: "connect"
            case .greeting: "greeting"
            case .ehlo: "EHLO"
            case .tlsHandshake: "TLS handshake"
            case .certificate: "certificate"
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
                                observed: Observations) -> ProbeFailure {
        if let cause = failure.cause { return classify(cause, failure: failure, endpoint: endpoint) }
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
        case .tls: return make(.tlsHandshake, tlsHint(failure, mode: mode))
        case .auth: return make(.auth, authHint(failure))
        case .mailFrom:
            return make(.sender, failure.reply == nil ? nil
                : "the upstream refused the envelope sender: set from: to an address this account may send as")
        case .rcptTo: return make(.recipient, nil)
        case .data, .dataEnd: return make(.data, nil)
        case .protocol: return make(.protocol, nil)
        case .timeout:
            if mode == .implicit, !observed.tlsEstablished {
                return make(.tlsHandshake, "no answer to the TLS handshake: is \(endpoint) an implicit-TLS port (usually 465)?")
            }
            return make(step(after: observed), nil)
        }
    }

    private static func classify(_ cause: UpstreamFailureCause, failure: UpstreamFailure, endpoint: String) -> ProbeFailure {
        switch cause {
        case .dns(let error):
            let hint = error.isTemporary ? "the DNS server did not answer; try again, or check /etc/resolv.conf"
                : "check the host name in the route"
            return ProbeFailure(step: .dns, explanation: error.description, hint: hint, underlying: failure)
        case .connect(let errors):
            let text = errors.map(\.description).joined(separator: "; ")
            let hint: String
            if errors.contains(where: \.timedOut) {
                hint = "no answer from \(endpoint): the port may be blocked by a firewall (many networks block outgoing 25, 465 and 587)"
            } else {
                hint = "nothing accepts connections on \(endpoint): check the port (587 for STARTTLS, 465 for implicit TLS) "
                    + "and that no firewall rejects it; the port may be blocked"
            }
            return ProbeFailure(step: .connect, explanation: text, hint: hint, underlying: failure)
        case .tls(let error):
            return classify(error, failure: failure)
        }
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

    private static func tlsHint(_ failure: UpstreamFailure, mode: TLSMode) -> String? {
        if failure.reply == nil, failure.detail.contains("does not offer STARTTLS") {
            return "the server does not offer STARTTLS here: use its STARTTLS port (587), or tls: implicit on port 465"
        }
        return nil
    }

    private static func authHint(_ failure: UpstreamFailure) -> String? {
        if let reply = failure.reply {
            return reply.code == 535 || reply.enhanced == "5.7.8"
                ? "the upstream rejected the username or password: check username and password_file/password_env"
                : nil
        }
        if failure.detail.contains("without TLS") {
            return "use tls: starttls or implicit; allow_plaintext_auth exists only for tls: none on trusted networks"
        }
        return nil
    }

    /// A timeout's step, from the last command sent.
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
