import Logging

/// What a delivery connection tells the one that owns it (the scheduler, or `smarthost test`),
/// always through `deliveryConnection(_:_:)`: one report path, in this order — any number of
/// `ready`/`finished` pairs, then exactly one `closed`.
enum DeliveryConnectionEvent {
    /// Idle and ready for `send`.
    case ready
    /// The message handed to `send` is done, one way or the other.
    case finished(SpoolID, DeliveryAttemptOutcome)
    /// The connection is gone. The failure is set when it died before it could take a
    /// message (DNS, connect, TLS, AUTH …) or while idle.
    case closed(UpstreamFailure?)
}

protocol DeliveryConnectionOwner: AnyObject {
    func deliveryConnection(_ connection: DeliveryConnection, _ event: DeliveryConnectionEvent)
}

/// One connection to an upstream on the reactor: DNS off the loop, non-blocking connect to
/// each address in turn, TLS over memory BIOs (implicit or after STARTTLS), and the
/// `UpstreamSession` value that speaks SMTP. This class only moves bytes and arms timers.
final class DeliveryConnection: StreamConnectionDelegate {
    private enum Phase {
        case idle, fetchingToken, resolving, connecting, handshaking(implicit: Bool), talking, closed
    }

    let target: DeliveryTarget
    let serial: UInt64
    private let loop: EventLoop
    private let resolver: HostResolver
    private let tlsContext: () throws -> TLSContext
    private let tokens: OAuth2TokenBroker?
    /// The bearer token this connection authenticates with, to tell the broker which one
    /// the upstream refused.
    private var currentToken: Secret?
    private weak var owner: DeliveryConnectionOwner?
    private var session: UpstreamSession
    private var phase: Phase = .idle
    private var stream: StreamConnection?
    private var tls: TLSConnection?
    private var connector: TCPConnector?
    private var addresses: [SocketAddress] = []
    private var connectErrors: [ConnectError] = []
    private var timer: TimerID?
    private var failureReported = false
    private(set) var currentMessageID: SpoolID?
    private(set) var messagesSent = 0
    var onTranscript: ((UpstreamTranscriptLine) -> Void)?
    /// How long `connect`, `tls` and `auth` (EHLO and AUTH, up to ready) took, once each per
    /// connection (`/metrics`).
    var onStep: ((String, Double) -> Void)?
    private var stepStartedAt: Int64?
    private var readyReported = false

    private func stepStarted() {
        stepStartedAt = MonotonicClock.nanoseconds()
    }

    private func stepEnded(_ step: String) {
        guard let started = stepStartedAt else { return }
        let now = MonotonicClock.nanoseconds()
        onStep?(step, Double(now - started) / 1e9)
        stepStartedAt = now
    }

    init(serial: UInt64, target: DeliveryTarget, loop: EventLoop, resolver: HostResolver,
         tlsContext: @escaping () throws -> TLSContext, tokens: OAuth2TokenBroker? = nil,
         owner: DeliveryConnectionOwner) {
        self.serial = serial
        self.target = target
        self.loop = loop
        self.resolver = resolver
        self.tlsContext = tlsContext
        self.tokens = tokens
        self.owner = owner
        self.session = UpstreamSession(parameters: target.parameters)
    }

    /// A message is being prepared for this connection on the spool reader thread.
    var reserved = false
    var isBusy: Bool { currentMessageID != nil || reserved }
    var canSend: Bool {
        // The session too: an idle connection that has sent QUIT is still "talking" until
        // the server closes it, and must not be handed a message meanwhile.
        guard case .talking = phase, currentMessageID == nil, !failureReported, session.canSend else { return false }
        return true
    }
    var tlsDescription: String? { tls.map { "\($0.negotiatedVersion ?? "TLS") \($0.cipher ?? "")" } }

    func start() {
        if let settings = target.oauth2 {
            return fetchToken(settings)
        }
        resolve()
    }

    // MARK: OAuth2 token

    /// The token comes first: with no token there is no point in connecting, and a token
    /// endpoint that is down must not make every connection open and idle upstream.
    private func fetchToken(_ settings: OAuth2Settings) {
        guard let tokens else {
            return fail(UpstreamFailure(step: .token, detail: "oauth2 route without a token broker"))
        }
        phase = .fetchingToken
        armTimer()
        tokens.token(for: settings) { [weak self] result in
            guard let self, case .fetchingToken = self.phase else { return }
            switch result {
            case .success(let grant):
                self.noteToken(grant, settings)
                self.currentToken = grant.token
                var parameters = self.target.parameters
                parameters.credentials?.password = grant.token.revealed
                self.session = UpstreamSession(parameters: parameters)
                self.resolve()
            case .failure(let error):
                self.onTranscript?(.note("oauth2 token: FAILED: \(error.detail)"))
                self.fail(Self.tokenFailure(error))
            }
        }
    }

    /// The upstream refused the token: tell the broker, get a fresh one, AUTH again.
    private func refreshToken() {
        guard let tokens, let settings = target.oauth2 else {
            return apply(session.tokenFailed(UpstreamFailure(step: .token, detail: "no oauth2 settings")))
        }
        if let currentToken { tokens.reject(currentToken, for: settings) }
        tokens.token(for: settings) { [weak self] result in
            // Never inside the action loop that asked: the answer may come at once.
            _ = self?.loop.schedule(afterMilliseconds: 0) { [weak self] in
                guard let self, case .talking = self.phase, self.session.state == .awaitingToken else { return }
                switch result {
                case .success(let grant):
                    self.noteToken(grant, settings)
                    self.currentToken = grant.token
                    self.apply(self.session.tokenRefreshed(grant.token.revealed))
                case .failure(let error):
                    self.onTranscript?(.note("oauth2 token: FAILED: \(error.detail)"))
                    self.apply(self.session.tokenFailed(Self.tokenFailure(error)))
                }
            }
        }
    }

    private func noteToken(_ grant: OAuth2TokenBroker.Grant, _ settings: OAuth2Settings) {
        let how = grant.fetched ? "fetched from \(settings.tokenURL)" : "cached"
        onTranscript?(.note("oauth2 token: \(how), access token ******** valid \(grant.expiresIn) s"))
    }

    static func tokenFailure(_ error: OAuth2TokenError) -> UpstreamFailure {
        UpstreamFailure(step: .token, detail: error.description, cause: .oauth2Token(error))
    }

    // MARK: connecting

    private func resolve() {
        phase = .resolving
        armTimer()
        resolver.resolve(host: target.host, port: target.port) { [weak self] result in
            guard let self, case .resolving = self.phase else { return }
            switch result {
            case .success(let addresses) where !addresses.isEmpty:
                self.addresses = addresses
                self.connectNext()
            case .success:
                let error = ResolveError(host: self.target.host, reason: "the name has no address", isTemporary: false)
                self.fail(UpstreamFailure(step: .connect, detail: error.description, cause: .dns(error)))
            case .failure(let error):
                self.fail(UpstreamFailure(step: .connect, detail: error.description, cause: .dns(error)))
            }
        }
    }

    func send(messageID: SpoolID, message: UpstreamMessage) {
        precondition(currentMessageID == nil, "one message at a time per connection")
        currentMessageID = messageID
        messagesSent += 1
        apply(session.send(message: message))
    }

    /// Polite close of an idle connection (QUIT).
    func quit() {
        guard case .talking = phase, currentMessageID == nil else { return close() }
        apply(session.quit())
    }

    func close() {
        guard !isClosed else { return }
        stream?.close()
        if stream == nil { finishClosed() }
    }

    private var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    private func connectNext() {
        guard !addresses.isEmpty else {
            let detail = connectErrors.map(\.description).joined(separator: "; ")
            return fail(UpstreamFailure(step: .connect, detail: detail.isEmpty ? "no address to connect to" : detail,
                                        cause: connectErrors.isEmpty ? nil : .connect(connectErrors)))
        }
        phase = .connecting
        if stepStartedAt == nil { stepStarted() }
        let address = addresses.removeFirst()
        connector = TCPConnector.connect(loop: loop, to: address, timeoutMilliseconds: target.timeoutMilliseconds) { [weak self] result in
            guard let self, case .connecting = self.phase else { return }
            self.connector = nil
            switch result {
            case .success(let fd): self.connected(fd: fd, address: address)
            case .failure(let error):
                self.connectErrors.append(error)
                self.connectNext()
            }
        }
    }

    private func connected(fd: Int32, address: SocketAddress) {
        do {
            let stream = try StreamConnection(loop: loop, fd: fd, peer: address)
            stream.delegate = self
            self.stream = stream
        } catch {
            return fail(UpstreamFailure(step: .connect, detail: "\(error)"))
        }
        onTranscript?(.note("connected to \(address)"))
        stepEnded("connect")
        if target.parameters.tlsMode == .implicit {
            beginTLS(implicit: true)
        } else {
            phase = .talking
            apply(session.connected())
        }
    }

    // MARK: TLS

    private func beginTLS(implicit: Bool) {
        do {
            tls = try TLSConnection(context: tlsContext(), serverName: HostResolver.stripBrackets(target.host))
        } catch {
            return fail(UpstreamFailure(step: .tls, detail: "TLS setup: \(error)", cause: (error as? TLSError).map { .tls($0) }))
        }
        phase = .handshaking(implicit: implicit)
        stepStarted()
        pumpHandshake()
    }

    private func pumpHandshake() {
        guard let tls, case .handshaking(let implicit) = phase else { return }
        let status: TLSHandshakeStatus
        do {
            status = try tls.handshake()
        } catch {
            flushCiphertext()
            if implicit {
                return fail(UpstreamFailure(step: .tls, detail: Self.describe(error), cause: .tls(error)))
            }
            // After STARTTLS the session owns the story: it reports the failure and closes.
            phase = .talking
            return apply(session.tlsFailed(Self.startTLSReason(error), cause: .tls(error)))
        }
        flushCiphertext()
        guard case .complete = status else { return armTimer() }
        phase = .talking
        onTranscript?(.note("TLS established: \(tlsDescription ?? "")"))
        stepEnded("tls")
        apply(implicit ? session.connected() : session.tlsEstablished())
        // Application data may have arrived with the last handshake flight.
        deliverPlaintext()
    }

    /// Implicit TLS: the detail of the connection's failure.
    static func describe(_ error: TLSError) -> String {
        switch error {
        case .certificate, .handshake: return error.description   // each names itself
        default: return "TLS handshake failed: \(error)"
        }
    }

    /// After STARTTLS: the session puts "TLS handshake failed:" in front itself.
    static func startTLSReason(_ error: TLSError) -> String {
        if case .handshake(let reason) = error { return reason + TLSError.hint(forHandshakeReason: reason) }
        return error.description
    }

    private func flushCiphertext() {
        guard let tls, let stream else { return }
        let bytes = tls.drainCiphertext()
        if !bytes.isEmpty { stream.write(bytes) }
    }

    private func deliverPlaintext() {
        guard let tls, case .talking = phase else { return }
        let plaintext: [UInt8]
        do {
            plaintext = try tls.readPlaintext()
        } catch {
            return fail(UpstreamFailure(step: .tls, detail: "TLS: \(error)"))
        }
        if !plaintext.isEmpty { apply(session.received(plaintext)) }
    }

    // MARK: StreamConnectionDelegate

    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        guard let tls else {
            apply(session.received(Array(bytes)))
            return
        }
        tls.feedCiphertext(Array(bytes))
        switch phase {
        case .handshaking: pumpHandshake()
        case .talking: deliverPlaintext(); flushCiphertext()
        default: break
        }
    }

    func streamConnectionDidDrain(_ connection: StreamConnection) {}

    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) {
        stream = nil
        switch phase {
        case .talking:
            apply(session.connectionClosed())
        case .handshaking:
            fail(UpstreamFailure(step: .tls, detail: "connection closed during the TLS handshake" + (error.map { ": \($0)" } ?? "")))
        default:
            break
        }
        finishClosed()
    }

    // MARK: session actions

    private func apply(_ actions: [UpstreamAction]) {
        if let onTranscript {
            for line in session.takeTranscript() { onTranscript(line) }
        }
        for action in actions {
            perform(action)
        }
        armTimer()
    }

    private func perform(_ action: UpstreamAction) {
        switch action {
        case .write(let bytes):
            if let tls {
                do {
                    try tls.write(plaintext: bytes)
                } catch {
                    return fail(UpstreamFailure(step: .tls, detail: "TLS: \(error)"))
                }
                flushCiphertext()
            } else {
                stream?.write(bytes)
            }
        case .startTLS:
            beginTLS(implicit: false)
        case .ready:
            if !readyReported {
                readyReported = true
                if target.parameters.credentials != nil || target.oauth2 != nil { stepEnded("auth") }
            }
            owner?.deliveryConnection(self, .ready)
        case .needFreshToken:
            refreshToken()
        case .messageResult(let result):
            let id = currentMessageID
            currentMessageID = nil
            if let id { owner?.deliveryConnection(self, .finished(id, .result(result))) }
        case .sessionFailed(let failure):
            // The session's own next actions (QUIT, then .close) end the connection: closing
            // here would drop the QUIT it just queued and leave the transcript claiming it.
            fail(failure, closeNow: false)
        case .close:
            stream?.closeAfterFlush()
        }
    }

    /// A failure outside a message: the owner hears it once; a message in hand is reported
    /// as a setup failure so the policy can retry it.
    private func fail(_ failure: UpstreamFailure, closeNow: Bool = true) {
        guard !failureReported else { return }
        failureReported = true
        if let id = currentMessageID {
            currentMessageID = nil
            owner?.deliveryConnection(self, .finished(id, .setupFailed(failure)))
        }
        pendingFailure = failure
        guard let stream else { return finishClosed() }
        if closeNow { stream.close() }
    }

    private var pendingFailure: UpstreamFailure?

    private func finishClosed() {
        guard !isClosed else { return }
        phase = .closed
        loop.cancel(timer)
        timer = nil
        connector?.cancel()
        connector = nil
        if let id = currentMessageID {
            currentMessageID = nil
            let failure = UpstreamFailure(step: .protocol, detail: "connection to \(target.displayName) lost")
            owner?.deliveryConnection(self, .finished(id, .setupFailed(failure)))
        }
        owner?.deliveryConnection(self, .closed(pendingFailure))
    }

    // MARK: timers

    private func armTimer() {
        loop.cancel(timer)
        timer = nil
        if isClosed { return }
        if case .talking = phase {
            // Idle connections are the scheduler's to keep or quit; `.none` needs no timer.
            switch session.timeoutKind {
            case .idle, .none: return
            default: break
            }
        }
        var delay = target.timeoutMilliseconds
        if case .talking = phase, session.state == .greeting, let greeting = target.greetingTimeoutMilliseconds {
            delay = min(delay, greeting)
        }
        timer = loop.schedule(afterMilliseconds: delay) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.timedOut()
        }
    }

    private func timedOut() {
        switch phase {
        case .resolving:
            fail(UpstreamFailure(step: .timeout, detail: "timeout while resolving \(target.host)"))
        case .fetchingToken:
            fail(UpstreamFailure(step: .token, detail: "timeout while fetching the oauth2 token from \(target.oauth2?.tokenURL ?? "?")"))
        case .connecting:
            break // the connector has its own timeout
        case .handshaking:
            fail(UpstreamFailure(step: .timeout, detail: "timeout during the TLS handshake with \(target.displayName)"))
        case .talking:
            apply(session.timedOut())
        case .idle, .closed:
            break
        }
    }
}
