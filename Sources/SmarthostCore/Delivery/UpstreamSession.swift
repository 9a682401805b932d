/// One connection to an upstream SMTP server as a plain value: the driver feeds it events
/// (connected, bytes read, TLS up, timer fired, socket closed) and carries out the actions
/// it returns, in order. It owns no socket, no TLS and no clock, so every dialogue can be
/// tested byte for byte.
///
/// Modelled on OpenSMTPD `mta_enter_state` and Postfix `smtp_proto.c`: `enter(_:)` is the
/// only place the state changes, and entering a state sends that state's command; the
/// reply handler for a state picks the next one. The session reports facts
/// (`UpstreamFailure`, `UpstreamDeliveryResult`); whether to retry or bounce is decided
/// elsewhere.
///
/// Driver loop: call `connected()`; write every `.write`; on `.startTLS` run the handshake
/// and call `tlsEstablished()` (or `tlsFailed(_:)`); on `.ready` call `send(message:)` or
/// `quit()`; after every event re-arm the timer for `timeoutKind`, and call `timedOut()`
/// when it fires; on `.close` close the socket.
public struct UpstreamSession: Sendable {
    public private(set) var state: State = .connecting
    /// From the latest EHLO; nil before it, and reset when TLS starts (RFC 3207 §4.2).
    public private(set) var capabilities: UpstreamCapabilities?
    public private(set) var tlsActive: Bool
    public var timeoutKind: UpstreamTimeoutKind { state.timeoutKind }

    private var parameters: UpstreamParameters
    /// A refused bearer token gets one fresh token and one more AUTH, no more.
    private var tokenRetried = false
    /// The JSON of the last OAuth error challenge, for the failure's words.
    private var oauthChallenge: String?
    private var parser = UpstreamReplyParser()
    private var transaction: Transaction?
    private var actions: [UpstreamAction] = []
    private var transcript: [UpstreamTranscriptLine] = []

    /// One message in flight.
    private struct Transaction: Sendable {
        let message: UpstreamMessage
        /// MAIL, every RCPT and DATA went out in one write (RFC 2920 §3.1).
        let pipelined: Bool
        var result = UpstreamDeliveryResult()
    }

    public init(parameters: UpstreamParameters) {
        self.parameters = parameters
        self.tlsActive = parameters.tlsMode == .implicit
    }

    // MARK: Events

    /// The TCP connection (and for `.implicit`, TLS) is up; the greeting is next.
    public mutating func connected() -> [UpstreamAction] {
        precondition(state == .connecting, "connected() in state \(state)")
        return run { $0.enter(.greeting) }
    }

    public mutating func received(_ bytes: some Collection<UInt8>) -> [UpstreamAction] {
        run { $0.consume(bytes) }
    }

    public mutating func tlsEstablished() -> [UpstreamAction] {
        precondition(state == .tlsHandshake, "tlsEstablished() in state \(state)")
        return run { session in
            // RFC 3207 §4.2: forget everything learnt before TLS, and any bytes a
            // man in the middle injected behind the 220 (CVE-2011-0411 class).
            session.parser.reset()
            session.tlsActive = true
            session.capabilities = nil
            session.note("TLS established")
            session.enter(.ehlo)
        }
    }

    /// The driver's handshake or certificate check failed; `reason` says which and why,
    /// `cause` is the typed error when the driver has one.
    public mutating func tlsFailed(_ reason: String, cause: UpstreamFailureCause? = nil) -> [UpstreamAction] {
        run { $0.fail(UpstreamFailure(step: .tls, detail: "TLS handshake failed: \(reason)", cause: cause), then: .closed) }
    }

    /// After `.needFreshToken`: the fresh token; AUTH is sent again with it.
    public mutating func tokenRefreshed(_ token: String) -> [UpstreamAction] {
        precondition(state == .awaitingToken, "tokenRefreshed(_:) in state \(state)")
        return run { session in
            session.parameters.credentials?.password = token
            session.note("fresh oauth2 token; AUTH again")
            session.authenticateOrReady()
        }
    }

    /// After `.needFreshToken`: the token endpoint gave none.
    public mutating func tokenFailed(_ failure: UpstreamFailure) -> [UpstreamAction] {
        precondition(state == .awaitingToken, "tokenFailed(_:) in state \(state)")
        return run { $0.fail(failure, then: .quit) }
    }

    /// The timer for `timeoutKind` fired.
    public mutating func timedOut() -> [UpstreamAction] {
        run { session in
            switch session.state {
            case .closed: break
            case .ready: session.enter(.quit)   // idle too long: leave politely
            case .quit: session.enter(.closed)
            case .connecting, .tlsHandshake:
                session.fail(UpstreamFailure(step: session.state.failureStep,
                                             detail: "timeout \(session.state)"), then: .closed)
            default:
                // A timeout after the end of data leaves the outcome unknown (RFC 1047).
                session.fail(UpstreamFailure(step: .timeout, detail: "timeout \(session.state)",
                                             mayHaveBeenDelivered: session.state == .dataEnd), then: .closed)
            }
        }
    }

    /// The peer closed the connection, or reading/writing failed.
    public mutating func connectionClosed() -> [UpstreamAction] {
        run { session in
            switch session.state {
            case .closed: break
            case .ready, .quit: session.enter(.closed)   // an idle server may hang up
            default:
                session.fail(UpstreamFailure(step: session.state.failureStep,
                                             detail: "connection closed \(session.state)",
                                             mayHaveBeenDelivered: session.state == .dataEnd), then: .closed)
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
            default:
                session.fail(UpstreamFailure(step: session.state.failureStep,
                                             detail: "session abandoned \(session.state)"), then: .closed)
            }
        }
    }

    /// The dialogue so far with AUTH payloads masked, when `recordTranscript` is on;
    /// taking it empties it.
    public mutating func takeTranscript() -> [UpstreamTranscriptLine] {
        defer { transcript.removeAll() }
        return transcript
    }

    private mutating func run(_ body: (inout UpstreamSession) -> Void) -> [UpstreamAction] {
        actions.removeAll()
        body(&self)
        return actions
    }

    // MARK: The one transition function

    private mutating func enter(_ next: State) {
        state = next
        switch next {
        case .connecting, .greeting: break
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
        guard state != .tlsHandshake && state != .closed && state != .connecting else { return }
        parser.feed(bytes)
        do {
            while state != .tlsHandshake && state != .closed, let reply = try parser.nextReply() {
                handle(reply)
            }
        } catch {
            fail(UpstreamFailure(step: .protocol, detail: "\(error.reason) \(state)",
                                 mayHaveBeenDelivered: state == .dataEnd), then: .closed)
        }
    }

    private mutating func handle(_ reply: SMTPReply) {
        record(.received(reply))
        // RFC 5321 §3.8: 421 means the server is closing the channel; it will read no more.
        if reply.code == 421 && state != .quit {
            if state == .ready { return enter(.closed) }
            return fail(UpstreamFailure(step: state.failureStep, reply: reply, detail: "server closing \(state)"),
                        then: .closed)
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
        case .awaitingToken: refuse(reply, detail: "unexpected reply while fetching a token", then: .closed)
        case .mailFrom: mailReply(reply)
        case .rcptTo(let index): rcptReply(reply, index: index)
        case .data: dataReply(reply)
        case .dataEnd: dataEndReply(reply)
        case .dataAbort: finishTransaction(then: .rset)
        case .rset: reply.isPositive ? enter(.ready) : refuse(reply, then: .quit)
        case .quit: enter(.closed)
        case .ready: refuse(reply, detail: "unexpected reply while idle", then: .closed)
        case .connecting, .tlsHandshake, .closed: preconditionFailure("reply in state \(state)")
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
                return fail(UpstreamFailure(step: .tls, detail: "server does not offer STARTTLS"), then: .quit)
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
    private mutating func authenticateOrReady() {
        guard parameters.credentials != nil else { return enter(.ready) }
        let plaintextAllowed = parameters.tlsMode == .none && parameters.allowPlaintextAuth
        guard tlsActive || plaintextAllowed else {
            return fail(UpstreamFailure(step: .auth, detail: "refusing to send credentials without TLS"), then: .quit)
        }
        let offered = capabilities?.authMechanisms ?? []
        if let oauth = credentials.oauth {
            for mechanism in [oauth.mechanism, oauth.mechanism.alternative] where offered.contains(mechanism.rawValue) {
                return enter(.authOAuth(mechanism))
            }
            let detail = offered.isEmpty
                ? "server does not offer AUTH"
                : "server offers neither XOAUTH2 nor OAUTHBEARER (offers \(offered.joined(separator: " ")))"
            return fail(UpstreamFailure(step: .auth, detail: detail), then: .quit)
        }
        if offered.contains("PLAIN") { return enter(.authPlain) }
        if offered.contains("LOGIN") { return enter(.authLogin) }
        let detail = offered.isEmpty
            ? "server does not offer AUTH"
            : "server offers no usable AUTH mechanism (offers \(offered.joined(separator: " ")))"
        fail(UpstreamFailure(step: .auth, detail: detail), then: .quit)
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
    private mutating func refuse(_ reply: SMTPReply, detail: String? = nil, then next: State) {
        fail(UpstreamFailure(step: state.failureStep, reply: reply, detail: detail ?? "refused \(state)"), then: next)
    }

    /// Reports `failure` on the message in flight, or on the session when there is none.
    private mutating func fail(_ failure: UpstreamFailure, then next: State) {
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

    private var pipelined: Bool { transaction?.pipelined ?? false }

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

    private mutating func send(_ line: String, masked: String? = nil) {
        record(.sent(masked ?? line))
        actions.append(.write(Array((line + "\r\n").utf8)))
    }

    private mutating func note(_ text: String) {
        record(.note(text))
    }

    private mutating func record(_ line: UpstreamTranscriptLine) {
        if parameters.recordTranscript { transcript.append(line) }
    }
}

// MARK: - Transactions

extension UpstreamSession {
    private mutating func begin(_ message: UpstreamMessage) {
        let caps = capabilities ?? UpstreamCapabilities()
        transaction = Transaction(message: message, pipelined: caps.pipelining)
        if let refusal = Self.localRefusal(of: message, capabilities: caps) {
            transaction?.result.failure = refusal
            return finishTransaction(then: .ready)
        }
        enter(.mailFrom)
    }

    private func mailFromCommand(_ message: UpstreamMessage, capabilities caps: UpstreamCapabilities) -> String {
        var command = "MAIL FROM:<\(message.sender)>"
        if caps.maxSize != nil { command += " SIZE=\(message.size)" }                  // RFC 1870
        if message.needs8BitMIME && caps.eightBitMIME { command += " BODY=8BITMIME" }  // RFC 6152
        if message.needsSMTPUTF8 { command += " SMTPUTF8" }                            // RFC 6531
        return command
    }

    private func rcptCommand(_ index: Int) -> String {
        guard let message = transaction?.message else { preconditionFailure("RCPT without a transaction") }
        return "RCPT TO:<\(message.recipients[index])>"
    }

    /// With PIPELINING the whole envelope and DATA go in one write (RFC 2920 §3.1: DATA
    /// may end a group) and the replies are matched in order; without it, one at a time.
    private mutating func sendMailFrom() {
        guard let transaction else { preconditionFailure("MAIL without a transaction") }
        let mail = mailFromCommand(transaction.message, capabilities: capabilities ?? UpstreamCapabilities())
        guard transaction.pipelined else { return send(mail) }
        let commands = [mail] + transaction.message.recipients.indices.map(rcptCommand) + ["DATA"]
        for command in commands { record(.sent(command)) }
        actions.append(.write(Array(commands.map { $0 + "\r\n" }.joined().utf8)))
    }

    private mutating func sendMessageData() {
        guard let data = transaction?.message.encodedData else { preconditionFailure("data without a transaction") }
        note("\(data.count) octets of message data")
        actions.append(.write(data))
    }

    private mutating func mailReply(_ reply: SMTPReply) {
        guard let transaction else { preconditionFailure("MAIL reply without a transaction") }
        if !reply.isPositive {
            self.transaction?.result.failure = UpstreamFailure(step: .mailFrom, reply: reply, detail: "sender refused")
            // Pipelined: the RCPT and DATA replies are still on their way; read them first.
            if !transaction.pipelined { return finishTransaction(then: .rset) }
        }
        enter(.rcptTo(index: 0))
    }

    /// Each recipient stands on its own: one refusal does not fail the others.
    private mutating func rcptReply(_ reply: SMTPReply, index: Int) {
        guard var current = transaction else { preconditionFailure("RCPT reply without a transaction") }
        let recipients = current.message.recipients
        if current.result.failure == nil {
            let entry = UpstreamRecipientResult(recipient: recipients[index], reply: reply)
            if reply.isPositive {
                current.result.accepted.append(entry)
            } else {
                current.result.refused.append(entry)
            }
        }
        let isLast = index + 1 == recipients.count
        if isLast, current.result.failure == nil, current.result.accepted.isEmpty {
            current.result.failure = UpstreamFailure(step: .rcptTo, reply: current.result.refused.last?.reply,
                                                     detail: "no recipient accepted")
        }
        transaction = current
        if !isLast { return enter(.rcptTo(index: index + 1)) }
        if current.pipelined || current.result.failure == nil { return enter(.data) }
        finishTransaction(then: .rset)
    }

    private mutating func dataReply(_ reply: SMTPReply) {
        let failedAlready = transaction?.result.failure != nil
        if reply.code == 354 {
            // A pipelined DATA can be accepted although MAIL or every RCPT failed: end it
            // with an empty message, which the server must refuse (RFC 2920 §3.1).
            return failedAlready ? enter(.dataAbort) : enter(.dataEnd)
        }
        if !failedAlready {
            transaction?.result.failure = UpstreamFailure(step: .data, reply: reply, detail: "DATA refused")
        }
        finishTransaction(then: .rset)
    }

    /// The final reply ends the transaction whatever it says, so no RSET is needed.
    private mutating func dataEndReply(_ reply: SMTPReply) {
        transaction?.result.dataReply = reply
        if !reply.isPositive {
            transaction?.result.failure = UpstreamFailure(step: .dataEnd, reply: reply, detail: "message refused")
        }
        finishTransaction(then: .ready)
    }

    private mutating func finishTransaction(then next: State) {
        guard let result = transaction?.result else { preconditionFailure("no transaction to finish") }
        transaction = nil
        actions.append(.messageResult(result))
        enter(next)
    }

    /// What we can tell before sending anything: a server without SMTPUTF8 cannot take a
    /// message that needs it (RFC 6531 §3.4), and one that announced a SIZE limit will
    /// refuse a larger message (RFC 1870 §6), so do not send it.
    private static func localRefusal(of message: UpstreamMessage, capabilities: UpstreamCapabilities) -> UpstreamFailure? {
        let addresses = [message.sender] + message.recipients
        if addresses.contains(where: { $0.utf8.contains { $0 < 32 || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") } }) {
            return UpstreamFailure(step: .mailFrom, detail: "invalid address in the envelope", permanent: true)
        }
        if message.needsSMTPUTF8 && !capabilities.smtpUTF8 {
            return UpstreamFailure(step: .mailFrom, detail: "message needs SMTPUTF8, which the server does not offer",
                                   permanent: true)
        }
        if let limit = capabilities.maxSize, limit > 0, message.size > limit {
            return UpstreamFailure(step: .mailFrom, detail: "message size \(message.size) exceeds the server's limit of \(limit)",
                                   permanent: true)
        }
        return nil
    }
}
