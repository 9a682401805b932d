import Logging

/// One connection to an upstream on the reactor. The `UpstreamSession` value decides
/// everything — token, DNS, which address next, TLS, the SMTP dialogue, every timeout and
/// the words of every failure; this class carries out its actions (a token fetch, DNS off
/// the loop, a non-blocking connect, TLS over memory BIOs, writes, the one timer) and
/// feeds back what came of them, and tells its owner through the `UpstreamConnection` seam.
final class DeliveryConnection: UpstreamConnection, StreamConnectionDelegate {
    let target: UpstreamTarget
    let serial: UInt64
    private let loop: EventLoop
    private let resolver: HostResolver
    private let tlsContext: () throws -> TLSContext
    private let tokens: OAuth2TokenBroker
    /// The bearer token this connection authenticates with, to tell the broker which one
    /// the upstream refused.
    private var currentToken: Secret?
    private weak var owner: (any UpstreamConnectionOwner)?
    private var session: UpstreamSession
    private var stream: StreamConnection?
    private var tls: TLSConnection?
    private var connector: TCPConnector?
    private var timer: TimerID?
    private var isClosed = false
    /// The session reported a failure: the owner hears it once, with `.closed`.
    private var failure: UpstreamFailure?
    private(set) var currentMessageID: SpoolID?
    private(set) var messagesSent = 0
    var onTranscript: ((UpstreamTranscriptLine) -> Void)?
    /// How long `connect`, `tls` and `auth` (EHLO and AUTH, up to ready) took, once each per
    /// connection (`/metrics`).
    var onStep: ((String, Double) -> Void)?
    private var stepStartedAt: Int64?
    private var readyReported = false

    init(serial: UInt64, target: UpstreamTarget, loop: EventLoop, resolver: HostResolver,
         tlsContext: @escaping () throws -> TLSContext, tokens: OAuth2TokenBroker,
         owner: any UpstreamConnectionOwner) {
        self.serial = serial
        self.target = target
        self.loop = loop
        self.resolver = resolver
        self.tlsContext = tlsContext
        self.tokens = tokens
        self.owner = owner
        self.session = UpstreamSession(target: target)
    }

    /// The session too: an idle connection that has sent QUIT must not be handed a message
    /// while it waits for the server to close.
    var canSend: Bool { !isClosed && currentMessageID == nil && failure == nil && session.canSend }
    var tlsDescription: String? { tls.map { "\($0.negotiatedVersion ?? "TLS") \($0.cipher ?? "")" } }

    func start() {
        apply(session.start())
    }

    func send(messageID: SpoolID, message: UpstreamMessage) {
        precondition(currentMessageID == nil, "one message at a time per connection")
        currentMessageID = messageID
        messagesSent += 1
        apply(session.send(message: message))
    }

    /// Polite close of an idle connection (QUIT); anything else is cut off.
    func quit() {
        // Mid-handshake nothing can be said in SMTP: cut off, like before the connection.
        guard currentMessageID == nil, stream != nil, !session.state.isSetup, session.state != .tlsHandshake else {
            return close()
        }
        apply(session.quit())
    }

    /// Closes at once. The session hears of it like any close, so a message in hand gets
    /// its "connection closed …" result.
    func close() {
        guard !isClosed else { return }
        if let stream { return stream.close() }
        finishClosed()
    }

    // MARK: Session actions

    private func apply(_ actions: [UpstreamAction]) {
        if let onTranscript {
            for line in session.takeTranscript() { onTranscript(line) }
        }
        for action in actions where !isClosed {
            perform(action)
        }
    }

    private func perform(_ action: UpstreamAction) {
        switch action {
        case .fetchToken: fetchToken(refusing: nil)
        case .needFreshToken: fetchToken(refusing: currentToken)
        case .resolve(let host, let port): resolve(host: host, port: port)
        case .connect(let address): connect(to: address)
        case .startTLS: beginTLS()
        case .armTimer(let deadline): arm(deadline)
        case .write(let bytes): write(bytes)
        case .ready: ready()
        case .messageResult(let result):
            let id = currentMessageID
            currentMessageID = nil
            if let id { owner?.upstreamConnection(self, .finished(id, .transaction(result))) }
        case .sessionFailed(let failure):
            // The session's own next actions (QUIT, then .close) end the connection: closing
            // here would drop the QUIT it just queued and leave the transcript claiming it.
            failed(failure)
        case .close:
            if let stream { stream.closeAfterFlush() } else { finishClosed() }
        }
    }

    private func ready() {
        if !readyReported {
            readyReported = true
            if target.authenticates { stepEnded("auth") }
        }
        owner?.upstreamConnection(self, .ready)
    }

    /// A message in hand is reported as a setup failure so the policy can retry it; the
    /// failure itself goes with `.closed`.
    private func failed(_ failure: UpstreamFailure) {
        guard self.failure == nil else { return }
        self.failure = failure
        if let id = currentMessageID {
            currentMessageID = nil
            owner?.upstreamConnection(self, .finished(id, .notSent(failure)))
        }
    }

    private func finishClosed() {
        guard !isClosed else { return }
        isClosed = true
        loop.cancel(timer)
        timer = nil
        connector?.cancel()
        connector = nil
        if let id = currentMessageID {
            currentMessageID = nil
            owner?.upstreamConnection(self, .finished(id, .notSent(.connectionLost(to: target.displayName))))
        }
        owner?.upstreamConnection(self, .closed(failure))
    }

    // MARK: Token, DNS, connect

    /// The answer may come at once, from the cache: it is fed back on the next turn of the
    /// loop, never inside the action list that asked.
    private func fetchToken(refusing refused: Secret?) {
        guard let settings = target.oauth2 else { preconditionFailure("a token for a route without oauth2") }
        if let refused { tokens.reject(refused, for: settings) }
        tokens.token(for: settings) { [weak self] result in
            _ = self?.loop.schedule(afterMilliseconds: 0) { [weak self] in
                guard let self, !self.isClosed else { return }
                switch result {
                case .success(let grant):
                    self.currentToken = grant.token
                    self.apply(self.session.tokenFetched(grant))
                case .failure(let error):
                    self.apply(self.session.tokenFailed(error))
                }
            }
        }
    }

    private func resolve(host: String, port: UInt16) {
        resolver.resolve(host: host, port: port) { [weak self] result in
            guard let self, !self.isClosed else { return }
            self.apply(self.session.resolved(result))
        }
    }

    private func connect(to address: SocketAddress) {
        connector?.cancel()
        if stepStartedAt == nil { stepStarted() }
        connector = TCPConnector.connect(loop: loop, to: address) { [weak self] result in
            guard let self, !self.isClosed else { return }
            self.connector = nil
            switch result {
            case .success(let fd): self.connected(fd: fd, address: address)
            case .failure(let error): self.apply(self.session.connectFailed(error))
            }
        }
    }

    private func connected(fd: Int32, address: SocketAddress) {
        do {
            let stream = try StreamConnection(loop: loop, fd: fd, peer: address)
            stream.delegate = self
            self.stream = stream
        } catch {
            return apply(session.connectFailed(ConnectError(address: "\(address)", reason: "\(error)", timedOut: false)))
        }
        stepEnded("connect")
        apply(session.connected())
    }

    // MARK: TLS

    private func beginTLS() {
        do {
            tls = try TLSConnection(context: tlsContext(), serverName: HostResolver.stripBrackets(target.host))
        } catch {
            return apply(session.tlsSetupFailed(error as? TLSError ?? .library(reason: "\(error)")))
        }
        stepStarted()
        pumpHandshake()
    }

    private func pumpHandshake() {
        guard let tls else { return }
        let status: TLSHandshakeStatus
        do {
            status = try tls.handshake()
        } catch {
            flushCiphertext()
            return apply(session.tlsFailed(error))
        }
        flushCiphertext()
        guard case .complete = status else { return apply(session.tlsHandshakeProgressed()) }
        stepEnded("tls")
        apply(session.tlsEstablished(tlsDescription))
        // Application data may have arrived with the last handshake flight.
        deliverPlaintext()
    }

    private var handshaking: Bool { session.state.timeoutKind == .tlsHandshake }

    private func flushCiphertext() {
        guard let tls, let stream else { return }
        let bytes = tls.drainCiphertext()
        if !bytes.isEmpty { stream.write(bytes) }
    }

    private func deliverPlaintext() {
        guard let tls, !isClosed, session.tlsActive else { return }
        let plaintext: [UInt8]
        do {
            plaintext = try tls.readPlaintext()
        } catch {
            return apply(session.tlsSessionFailed(error))
        }
        if !plaintext.isEmpty { apply(session.received(plaintext)) }
    }

    private func write(_ bytes: [UInt8]) {
        guard let tls else {
            stream?.write(bytes)
            return
        }
        do {
            try tls.write(plaintext: bytes)
        } catch {
            return apply(session.tlsSessionFailed(error))
        }
        flushCiphertext()
    }

    // MARK: StreamConnectionDelegate

    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        // A finished session hears nothing more (and a handshake it gave up on is not read).
        guard session.state != .closed else { return }
        guard let tls else {
            apply(session.received(Array(bytes)))
            return
        }
        tls.feedCiphertext(Array(bytes))
        if handshaking {
            pumpHandshake()
        } else {
            deliverPlaintext()
            flushCiphertext()
        }
    }

    func streamConnectionDidDrain(_ connection: StreamConnection) {}

    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) {
        stream = nil
        if !isClosed { apply(session.connectionClosed(error)) }
        finishClosed()
    }

    // MARK: Timer and metrics

    private func arm(_ deadline: Int64?) {
        loop.cancel(timer)
        timer = nil
        guard let deadline else { return }
        let delay = max(0, deadline - MonotonicClock.nowMilliseconds())
        timer = loop.schedule(afterMilliseconds: delay) { [weak self] in
            guard let self, !self.isClosed else { return }
            self.timer = nil
            self.apply(self.session.timedOut())
        }
    }

    private func stepStarted() {
        stepStartedAt = MonotonicClock.nanoseconds()
    }

    private func stepEnded(_ step: String) {
        guard let started = stepStartedAt else { return }
        let now = MonotonicClock.nanoseconds()
        onStep?(step, Double(now - started) / 1e9)
        stepStartedAt = now
    }
}
