/// One connection to an upstream SMTP server as a plain value, from the token fetch to
/// QUIT: the driver feeds it events (token fetched, addresses resolved, connected, TLS
/// progress, bytes read, timer fired, socket closed) and carries out the actions it
/// returns, in order. It owns no socket, no TLS and no timer; its clock is injected, so
/// every dialogue and every timeout can be tested byte for byte.
///
/// Modelled on OpenSMTPD `mta_enter_state` and Postfix `smtp_proto.c`: `enter(_:)` is the
/// only place the state changes, and entering a state sends that state's command (or asks
/// the driver for that state's I/O); the reply handler for a state picks the next one.
/// Every state has its timer and its words (`UpstreamSessionState.swift`). The session
/// reports facts (`UpstreamFailure` with a typed `Reason`, `UpstreamDeliveryResult`);
/// whether to retry or bounce is decided elsewhere.
///
/// Driver loop: call `start()`; carry out each action (`.fetchToken`, `.resolve`,
/// `.connect`, `.startTLS`, `.write`, `.armTimer`, `.close`) and feed back what came of
/// it; on `.ready` call `send(message:)` or `quit()`.
public struct UpstreamSession: Sendable {
    public internal(set) var state: State = .idle
    /// From the latest EHLO; nil before it, and reset when TLS starts (RFC 3207 §4.2).
    public internal(set) var capabilities: UpstreamCapabilities?
    public internal(set) var tlsActive = false
    public var timeoutKind: UpstreamTimeoutKind { state.timeoutKind }

    /// Where to and how; `target.parameters` as given, the token filled in below.
    let target: UpstreamTarget
    var parameters: UpstreamParameters
    /// Monotonic milliseconds; deadlines in `.armTimer` are on this clock.
    let clock: @Sendable () -> Int64
    /// The deadline last handed out with `.armTimer`.
    var armedDeadline: Int64?
    /// The addresses still to try, and why each one tried so far failed.
    var addresses: [SocketAddress] = []
    var connectErrors: [ConnectError] = []
    /// The address being connected to or connected.
    public internal(set) var peer: SocketAddress?
    /// A refused bearer token gets one fresh token and one more AUTH, no more.
    var tokenRetried = false
    /// The JSON of the last OAuth error challenge, for the failure's words.
    var oauthChallenge: String?
    var parser = UpstreamReplyParser()
    var transaction: Transaction?
    var actions: [UpstreamAction] = []
    var transcript: [UpstreamTranscriptLine] = []

    /// One message in flight.
    struct Transaction: Sendable {
        let message: UpstreamMessage
        /// MAIL, every RCPT and DATA went out in one write (RFC 2920 §3.1).
        let pipelined: Bool
        var result = UpstreamDeliveryResult()
    }

    public init(target: UpstreamTarget,
                clock: @escaping @Sendable () -> Int64 = { MonotonicClock.nowMilliseconds() }) {
        self.target = target
        self.parameters = target.parameters
        self.clock = clock
    }

    // MARK: Events

    /// Begins: the token first on an OAuth2 route, else the DNS lookup.
    public mutating func start() -> [UpstreamAction] {
        precondition(state == .idle, "start() in state \(state)")
        return run { $0.enter($0.target.oauth2 == nil ? .resolving : .fetchingToken) }
    }

    public mutating func received(_ bytes: some Collection<UInt8>) -> [UpstreamAction] {
        run { $0.consume(bytes) }
    }

    /// After `.startTLS`: the handshake is done; `negotiated` ("TLSv1.3 TLS_AES_…") is
    /// for the transcript.
    public mutating func tlsEstablished(_ negotiated: String? = nil) -> [UpstreamAction] {
        precondition(state == .tlsHandshake || state == .implicitTLSHandshake, "tlsEstablished() in state \(state)")
        return run { session in
            // RFC 3207 §4.2: forget everything learnt before TLS, and any bytes a
            // man in the middle injected behind the 220 (CVE-2011-0411 class).
            session.parser.reset()
            session.tlsActive = true
            session.capabilities = nil
            session.record(.tlsEstablished(negotiated))
            session.enter(session.state == .implicitTLSHandshake ? .greeting : .ehlo)
        }
    }

    /// The timer of the last `.armTimer` fired.
    public mutating func timedOut() -> [UpstreamAction] {
        run { session in
            session.armedDeadline = nil   // that timer is spent: the next state's is announced afresh
            switch session.state {
            case .idle, .closed: break
            case .ready: session.enter(.quit)   // idle too long: leave politely
            case .quit: session.enter(.closed)
            case .fetchingToken, .resolving, .connecting, .implicitTLSHandshake, .tlsHandshake:
                session.setupTimedOut()
            default:
                // A timeout after the end of data leaves the outcome unknown (RFC 1047).
                session.fail(UpstreamFailure(step: .timeout, detail: "timeout \(session.state)",
                                             mayHaveBeenDelivered: session.state == .dataEnd,
                                             reason: .timeout(session.state)), then: .closed)
            }
        }
    }

    /// The peer closed the connection, or reading/writing failed; `error` when the
    /// socket said why.
    public mutating func connectionClosed(_ error: SystemError? = nil) -> [UpstreamAction] {
        run { session in
            switch session.state {
            case .idle, .fetchingToken, .resolving, .connecting, .closed: break   // no socket yet, or done
            case .ready, .quit: session.enter(.closed)   // an idle server may hang up
            case .implicitTLSHandshake, .tlsHandshake:
                session.fail(UpstreamFailure(step: .tls, detail: "connection closed during the TLS handshake"
                                                + (error.map { ": \($0)" } ?? ""),
                                             reason: .connectionClosed(session.state)), then: .closed)
            default:
                session.fail(UpstreamFailure(step: session.state.failureStep,
                                             detail: "connection closed \(session.state)",
                                             mayHaveBeenDelivered: session.state == .dataEnd,
                                             reason: .connectionClosed(session.state)), then: .closed)
            }
        }
    }

    /// Starts a transaction. Only valid after `.ready`.
    public mutating func send(message: UpstreamMessage) -> [UpstreamAction] {
        precondition(state == .ready && transaction == nil, "send(message:) in state \(state)")
        return run { $0.begin(message) }
    }

    /// Whether `send(message:)` may be called now: between transactions, not after QUIT.
    public var canSend: Bool { state == .ready && transaction == nil }

    /// Ends the session: QUIT when idle, otherwise the connection is abandoned.
    public mutating func quit() -> [UpstreamAction] {
        run { session in
            switch session.state {
            case .ready: session.enter(.quit)
            case .quit, .closed: break
            case .idle, .fetchingToken, .resolving, .connecting:
                session.enter(.closed)   // nothing to say goodbye on
            default:
                session.fail(UpstreamFailure(step: session.state.failureStep,
                                             detail: "session abandoned \(session.state)",
                                             reason: .abandoned), then: .closed)
            }
        }
    }

    /// The dialogue so far with AUTH payloads masked, when `recordTranscript` is on;
    /// taking it empties it.
    public mutating func takeTranscript() -> [UpstreamTranscriptLine] {
        defer { transcript.removeAll() }
        return transcript
    }

    /// Runs one event and returns its actions, a changed timer first: the inactivity
    /// timer restarts with every event, with the timeout of the state the event left.
    mutating func run(_ body: (inout UpstreamSession) -> Void) -> [UpstreamAction] {
        actions.removeAll()
        body(&self)
        let deadline = timeoutMilliseconds.map { clock() + $0 }
        if deadline != armedDeadline {
            armedDeadline = deadline
            actions.insert(.armTimer(deadline: deadline), at: 0)
        }
        return actions
    }

    /// The route's timeout for every step but idling; the greeting's may be shorter.
    private var timeoutMilliseconds: Int64? {
        switch timeoutKind {
        case .idle, .none: nil
        case .greeting: min(target.timeoutMilliseconds, target.greetingTimeoutMilliseconds ?? target.timeoutMilliseconds)
        case .setup, .tlsHandshake, .reply: target.timeoutMilliseconds
        }
    }

    // MARK: The one transition function

    mutating func enter(_ next: State) {
        state = next
        switch next {
        case .idle, .greeting: break
        case .fetchingToken: actions.append(.fetchToken)
        case .resolving: actions.append(.resolve(host: target.host, port: target.port))
        case .connecting: connectNext()
        case .implicitTLSHandshake: actions.append(.startTLS)
        case .ehlo: send("EHLO \(parameters.ehloName)")
        case .helo: send("HELO \(parameters.ehloName)")
        case .startTLS: send("STARTTLS")
        case .tlsHandshake:
            // RFC 3207 §4.2: nothing learnt before TLS is trusted after it.
            parser.reset()
            capabilities = nil
            actions.append(.startTLS)
        case .authPlain: send("AUTH PLAIN " + plainResponse(), masked: "AUTH PLAIN ********")
        case .authLogin: send("AUTH LOGIN")
        case .authLoginUsername: send(UpstreamBase64.encodeString(credentials.username.utf8), masked: "********")
        case .authLoginPassword: send(UpstreamBase64.encodeString(credentials.password.utf8), masked: "********")
        case .authOAuth(let mechanism): sendOAuth(mechanism)
        case .authOAuthErrorAck(let mechanism): send(UpstreamOAuthSASL.errorAcknowledgement(mechanism))
        case .awaitingToken: actions.append(.needFreshToken)
        case .ready: actions.append(.ready)
        case .mailFrom: sendMailFrom()
        case .rcptTo(let index): if !pipelined { send(rcptCommand(index)) }
        case .data: if !pipelined { send("DATA") }
        case .dataEnd: sendMessageData()
        case .dataAbort: send(".")
        case .rset: send("RSET")
        case .quit: send("QUIT")
        case .closed: actions.append(.close)
        }
    }

    // MARK: Replies

    private mutating func consume(_ bytes: some Collection<UInt8>) {
        // Between 220-to-STARTTLS and the handshake the socket belongs to TLS; plaintext
        // arriving here is never a reply (RFC 3207 §4.2).
        guard !state.isSetup && state != .tlsHandshake && state != .closed else { return }
        parser.feed(bytes)
        do {
            while state != .tlsHandshake && state != .closed, let reply = try parser.nextReply() {
                handle(reply)
            }
        } catch {
            fail(UpstreamFailure(step: .protocol, detail: "\(error.reason) \(state)",
                                 mayHaveBeenDelivered: state == .dataEnd, reason: .malformedReply), then: .closed)
        }
    }

    private mutating func handle(_ reply: SMTPReply) {
        record(.received(reply))
        // RFC 5321 §3.8: 421 means the server is closing the channel; it will read no more.
        if reply.code == 421 && state != .quit {
            if state == .ready { return enter(.closed) }
            return fail(UpstreamFailure(step: state.failureStep, reply: reply, detail: "server closing \(state)",
                                        reason: .rejected), then: .closed)
        }
        switch state {
        case .greeting: greetingReply(reply)
        case .ehlo: ehloReply(reply)
        case .helo: heloReply(reply)
        case .startTLS: startTLSReply(reply)
        case .authPlain, .authLoginPassword: authDoneReply(reply)
        case .authLogin: authChallengeReply(reply, next: .authLoginUsername)
        case .authLoginUsername: authChallengeReply(reply, next: .authLoginPassword)
        case .authOAuth(let mechanism): oauthReply(reply, mechanism: mechanism)
        case .authOAuthErrorAck: reply.code == 235 ? enter(.ready) : oauthRejected(reply)
        case .awaitingToken: refuse(reply, detail: "unexpected reply while fetching a token", reason: .unexpectedReply, then: .closed)
        case .mailFrom: mailReply(reply)
        case .rcptTo(let index): rcptReply(reply, index: index)
        case .data: dataReply(reply)
        case .dataEnd: dataEndReply(reply)
        case .dataAbort: finishTransaction(then: .rset)
        case .rset: reply.isPositive ? enter(.ready) : refuse(reply, then: .quit)
        case .quit: enter(.closed)
        case .ready: refuse(reply, detail: "unexpected reply while idle", reason: .unexpectedReply, then: .closed)
        case .idle, .fetchingToken, .resolving, .connecting, .implicitTLSHandshake, .tlsHandshake, .closed:
            preconditionFailure("reply in state \(state)")
        }
    }

    private mutating func greetingReply(_ reply: SMTPReply) {
        reply.code == 220 ? enter(.ehlo) : refuse(reply, then: .quit)
    }

    private mutating func ehloReply(_ reply: SMTPReply) {
        guard reply.code == 250 else {
            // RFC 5321 §4.1.4: fall back to HELO for an old server, but never when TLS or
            // AUTH is required: both need EHLO, and carrying on without them is a downgrade.
            let mayFallBack = reply.isPermanent && parameters.tlsMode != .starttls && parameters.credentials == nil
            return mayFallBack ? enter(.helo) : refuse(reply, then: .quit)
        }
        capabilities = UpstreamCapabilities(ehloReply: reply)
        if parameters.tlsMode == .starttls && !tlsActive {
            guard capabilities?.startTLS == true else {
                return fail(UpstreamFailure(step: .tls, detail: "server does not offer STARTTLS", reason: .starttlsNotOffered),
                            then: .quit)
            }
            return enter(.startTLS)
        }
        authenticateOrReady()
    }

    private mutating func heloReply(_ reply: SMTPReply) {
        guard reply.code == 250 else { return refuse(reply, then: .quit) }
        capabilities = UpstreamCapabilities()
        authenticateOrReady()
    }

    private mutating func startTLSReply(_ reply: SMTPReply) {
        reply.code == 220 ? enter(.tlsHandshake) : refuse(reply, then: .quit)
    }

    /// RFC 4954 §4: PLAIN in one round with an initial response; LOGIN only when the
    /// server has no PLAIN. Credentials never go out before TLS (product contract),
    /// except on an explicitly plaintext route that allows it.
    mutating func authenticateOrReady() {
        guard parameters.credentials != nil else { return enter(.ready) }
        let plaintextAllowed = parameters.tlsMode == .none && parameters.allowPlaintextAuth
        guard tlsActive || plaintextAllowed else {
            return fail(UpstreamFailure(step: .auth, detail: "refusing to send credentials without TLS",
                                        reason: .plaintextAuthRefused), then: .quit)
        }
        let offered = capabilities?.authMechanisms ?? []
        if let oauth = credentials.oauth {
            for mechanism in [oauth.mechanism, oauth.mechanism.alternative] where offered.contains(mechanism.rawValue) {
                return enter(.authOAuth(mechanism))
            }
            let detail = offered.isEmpty
                ? "server does not offer AUTH"
                : "server offers neither XOAUTH2 nor OAUTHBEARER (offers \(offered.joined(separator: " ")))"
            return fail(UpstreamFailure(step: .auth, detail: detail, reason: .authMechanismUnsupported(offered: offered)),
                        then: .quit)
        }
        if offered.contains("PLAIN") { return enter(.authPlain) }
        if offered.contains("LOGIN") { return enter(.authLogin) }
        let detail = offered.isEmpty
            ? "server does not offer AUTH"
            : "server offers no usable AUTH mechanism (offers \(offered.joined(separator: " ")))"
        fail(UpstreamFailure(step: .auth, detail: detail, reason: .authMechanismUnsupported(offered: offered)), then: .quit)
    }

    private mutating func authChallengeReply(_ reply: SMTPReply, next: State) {
        reply.code == 334 ? enter(next) : refuse(reply, then: .quit)
    }

    /// 235, or a 334 error challenge (the token was refused; the server explains in JSON and
    /// waits for the client's answer before its 535), or a refusal outright (Microsoft).
    private mutating func oauthReply(_ reply: SMTPReply, mechanism: UpstreamOAuthMechanism) {
        switch reply.code {
        case 235: enter(.ready)
        case 334:
            oauthChallenge = UpstreamOAuthSASL.decodeChallenge(reply.text)
            if let oauthChallenge { note("error challenge: \(oauthChallenge)") }
            enter(.authOAuthErrorAck(mechanism))
        default: oauthRejected(reply)
        }
    }

    /// The first refusal of a token may be a token revoked or expired early: one fresh
    /// token, one more try. A server that is busy (4xx other than an auth failure) is not
    /// a token problem.
    private mutating func oauthRejected(_ reply: SMTPReply) {
        let tokenProblem = reply.code == 535 || reply.code == 334 || reply.enhanced?.hasPrefix("5.7.") == true
            || reply.enhanced?.hasPrefix("4.7.") == true
        if tokenProblem, !tokenRetried {
            tokenRetried = true
            note("the token was refused: getting a fresh one")
            return enter(.awaitingToken)
        }
        let detail = "refused \(state)" + (oauthChallenge.map { "; error challenge: \($0)" } ?? "")
        refuse(reply, detail: detail, then: .quit)
    }

    private mutating func authDoneReply(_ reply: SMTPReply) {
        reply.code == 235 ? enter(.ready) : refuse(reply, then: .quit)
    }

    // MARK: Failures

    /// The server refused in the current state: its step, its reply.
    private mutating func refuse(_ reply: SMTPReply, detail: String? = nil, reason: UpstreamFailure.Reason = .rejected,
                                 then next: State) {
        fail(UpstreamFailure(step: state.failureStep, reply: reply, detail: detail ?? "refused \(state)", reason: reason),
             then: next)
    }

    /// Reports `failure` on the message in flight, or on the session when there is none.
    mutating func fail(_ failure: UpstreamFailure, then next: State) {
        if transaction != nil {
            transaction?.result.failure = failure
            finishTransaction(then: next)
        } else {
            actions.append(.sessionFailed(failure))
            enter(next)
        }
    }

    // MARK: Output

    private var credentials: UpstreamCredentials {
        guard let credentials = parameters.credentials else { preconditionFailure("AUTH without credentials") }
        return credentials
    }

    var pipelined: Bool { transaction?.pipelined ?? false }

    private mutating func sendOAuth(_ mechanism: UpstreamOAuthMechanism) {
        oauthChallenge = nil
        let oauth = credentials.oauth ?? UpstreamOAuth(mechanism: mechanism, host: "", port: 0)
        let response = UpstreamOAuthSASL.initialResponse(mechanism, user: credentials.username,
                                                         token: credentials.password, host: oauth.host, port: oauth.port)
        send("AUTH \(mechanism.rawValue) \(response)", masked: "AUTH \(mechanism.rawValue) ********")
    }

    /// RFC 4616 §2: authzid (empty) NUL authcid NUL passwd.
    private func plainResponse() -> String {
        var payload: [UInt8] = [0]
        payload += credentials.username.utf8
        payload.append(0)
        payload += credentials.password.utf8
        return UpstreamBase64.encodeString(payload)
    }

    mutating func send(_ line: String, masked: String? = nil) {
        record(.sent(masked ?? line))
        actions.append(.write(Array((line + "\r\n").utf8)))
    }

    mutating func note(_ text: String) {
        record(.note(text))
    }

    mutating func record(_ line: UpstreamTranscriptLine) {
        if parameters.recordTranscript { transcript.append(line) }
    }
}

