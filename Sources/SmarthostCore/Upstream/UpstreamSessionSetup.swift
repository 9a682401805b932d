/// Everything before the greeting — the OAuth2 token, DNS, the TCP connect to each address
/// in turn, implicit TLS — and the STARTTLS handshake, as events of the session value. The
/// driver does the I/O; the session decides what comes next, when to give up and in what
/// words, so every path is tested without sockets.
extension UpstreamSession {
    // MARK: The OAuth2 token

    /// `.fetchToken` or `.needFreshToken` gave a token: connect with it, or AUTH again.
    mutating func tokenFetched(_ grant: OAuth2TokenBroker.Grant) -> [UpstreamAction] {
        run { session in
            guard session.state == .fetchingToken || session.state == .awaitingToken else { return }
            let how = grant.fetched ? "fetched from \(session.tokenURL)" : "cached"
            session.note("oauth2 token: \(how), access token ******** valid \(grant.expiresIn) s")
            session.parameters.credentials?.password = grant.token.revealed
            if session.state == .fetchingToken { return session.enter(.resolving) }
            session.note("fresh oauth2 token; AUTH again")
            session.authenticateOrReady()
        }
    }

    /// The token endpoint gave no token. Before connecting the session just ends; after a
    /// refused token it says QUIT.
    public mutating func tokenFailed(_ error: OAuth2TokenError) -> [UpstreamAction] {
        run { session in
            guard session.state == .fetchingToken || session.state == .awaitingToken else { return }
            session.note("oauth2 token: FAILED: \(error.detail)")
            let failure = UpstreamFailure(step: .token, detail: error.description, reason: .tokenFailed(error))
            session.fail(failure, then: session.state == .fetchingToken ? .closed : .quit)
        }
    }

    private var tokenURL: String { target.oauth2?.tokenURL ?? "?" }

    // MARK: DNS and TCP

    /// The answer to `.resolve`; an empty list is a failure too.
    public mutating func resolved(_ result: Result<[SocketAddress], ResolveError>) -> [UpstreamAction] {
        run { session in
            guard session.state == .resolving else { return }
            switch result {
            case .success(let addresses) where !addresses.isEmpty:
                session.addresses = addresses
                session.enter(.connecting)
            case .success:
                session.dnsFailed(ResolveError(host: session.target.host, reason: "the name has no address", isTemporary: false))
            case .failure(let error):
                session.dnsFailed(error)
            }
        }
    }

    private mutating func dnsFailed(_ error: ResolveError) {
        fail(UpstreamFailure(step: .connect, detail: error.description, reason: .dnsFailed(error)), then: .closed)
    }

    /// The connect to `peer` succeeded: implicit TLS starts, otherwise the greeting is next.
    public mutating func connected() -> [UpstreamAction] {
        precondition(state == .connecting, "connected() in state \(state)")
        return run { session in
            session.record(.connected(session.peer.map { "\($0)" } ?? "?"))
            session.enter(session.parameters.tlsMode == .implicit ? .implicitTLSHandshake : .greeting)
        }
    }

    /// The connect to `peer` failed: the next address, or the failure naming every one.
    public mutating func connectFailed(_ error: ConnectError) -> [UpstreamAction] {
        run { session in
            guard session.state == .connecting else { return }
            session.connectErrors.append(error)
            session.connectNext()
        }
    }

    /// Each address gets the full timeout; the failure lists every address's error, in order.
    mutating func connectNext() {
        guard !addresses.isEmpty else {
            let detail = connectErrors.map(\.description).joined(separator: "; ")
            return fail(UpstreamFailure(step: .connect, detail: detail.isEmpty ? "no address to connect to" : detail,
                                        reason: .connectFailed(connectErrors)), then: .closed)
        }
        let address = addresses.removeFirst()
        peer = address
        actions.append(.connect(address))
    }

    // MARK: TLS

    /// The handshake moved on but is not done: its timer starts again.
    public mutating func tlsHandshakeProgressed() -> [UpstreamAction] {
        run { _ in }
    }

    /// No TLS connection could be made for the handshake (context, CA file).
    public mutating func tlsSetupFailed(_ error: TLSError) -> [UpstreamAction] {
        run { session in
            guard session.state.timeoutKind == .tlsHandshake else { return }
            session.fail(UpstreamFailure(step: .tls, detail: "TLS setup: \(error)", reason: .tlsFailed(error)), then: .closed)
        }
    }

    /// The handshake or the certificate check failed. Nothing can be said on the socket
    /// any more, so no QUIT.
    public mutating func tlsFailed(_ error: TLSError) -> [UpstreamAction] {
        run { session in
            let detail: String
            switch session.state {
            case .implicitTLSHandshake: detail = Self.implicitTLSDetail(error)
            case .tlsHandshake: detail = "TLS handshake failed: " + Self.startTLSReason(error)
            default: return
            }
            session.fail(UpstreamFailure(step: .tls, detail: detail, reason: .tlsFailed(error)), then: .closed)
        }
    }

    /// The established TLS session broke while reading or writing. A message in hand is
    /// reported by the driver as not sent (a setup failure), as it always was.
    public mutating func tlsSessionFailed(_ error: TLSError) -> [UpstreamAction] {
        run { session in
            guard session.state != .closed else { return }
            session.transaction = nil
            session.actions.append(.sessionFailed(UpstreamFailure(step: .tls, detail: "TLS: \(error)",
                                                                  reason: .tlsSessionFailed(error))))
            session.enter(.closed)
        }
    }

    /// Implicit TLS: certificate and handshake errors name themselves.
    static func implicitTLSDetail(_ error: TLSError) -> String {
        switch error {
        case .certificate, .handshake: error.description
        default: "TLS handshake failed: \(error)"
        }
    }

    /// After STARTTLS "TLS handshake failed:" goes in front, so a handshake error gives
    /// only its reason (and hint).
    static func startTLSReason(_ error: TLSError) -> String {
        if case .handshake(let reason) = error { return reason + TLSError.hint(forHandshakeReason: reason) }
        return error.description
    }

    // MARK: Timers

    /// The timer of a step before the dialogue fired: each step says what it was waiting for.
    mutating func setupTimedOut() {
        switch state {
        case .fetchingToken:
            fail(UpstreamFailure(step: .token, detail: "timeout while fetching the oauth2 token from \(tokenURL)",
                                 reason: .timeout(state)), then: .closed)
        case .resolving:
            fail(UpstreamFailure(step: .timeout, detail: "timeout while resolving \(target.host)",
                                 reason: .timeout(state)), then: .closed)
        case .connecting:
            connectErrors.append(ConnectError(address: peer.map { "\($0)" } ?? "?", reason: "timed out", timedOut: true))
            connectNext()
        case .implicitTLSHandshake, .tlsHandshake:
            fail(UpstreamFailure(step: .timeout, detail: "timeout during the TLS handshake with \(target.displayName)",
                                 reason: .timeout(state)), then: .closed)
        default:
            preconditionFailure("setupTimedOut() in state \(state)")
        }
    }
}
