import Testing
@testable import SmarthostCore

/// The states before the greeting — token, DNS, each address in turn, implicit TLS — and
/// the STARTTLS handshake, driven like the reactor would, with the clock moved by hand.
@Suite struct UpstreamSessionSetupTests {
    static let first = SocketAddress(ip: "192.0.2.1", port: 25)!
    static let second = SocketAddress(ip: "2001:db8::1", port: 25)!
    static let timeout: Int64 = 30_000

    let clock = ManualClock()

    func session(_ mode: UpstreamTLSMode = .none, oauth2: OAuth2Settings? = nil, greetingTimeout: Int64? = nil,
                 credentials: UpstreamCredentials? = nil) -> UpstreamSession {
        let parameters = UpstreamParameters(ehloName: "relay.example", tlsMode: mode, credentials: credentials,
                                            recordTranscript: true)
        return UpstreamSession(target: .testing(parameters, timeout: Self.timeout, greetingTimeout: greetingTimeout,
                                                oauth2: oauth2),
                               clock: clock.read)
    }

    /// Started and resolved to both addresses: connecting to the first.
    func connecting(_ mode: UpstreamTLSMode = .none) -> UpstreamSession {
        var s = session(mode)
        _ = s.start()
        _ = s.resolved(.success([Self.first, Self.second]))
        return s
    }

    static func failure(_ actions: [UpstreamAction]) -> UpstreamFailure? {
        for case .sessionFailed(let failure) in actions { return failure }
        return nil
    }

    static let oauth2 = OAuth2Settings(provider: .microsoft,
                                       grant: .clientSecret(clientID: "app", secret: Secret(revealed: "x", origin: "t")),
                                       tokenURL: "https://login.example/token", scope: nil)

    // MARK: The way to the greeting

    @Test func resolvesConnectsThenWaitsForTheGreeting() {
        var s = session()
        #expect(s.start() == [.armTimer(deadline: clock.now + Self.timeout), .resolve(host: "mx.example", port: 25)])
        #expect(s.state == .resolving)
        clock.advance(5)
        #expect(s.resolved(.success([Self.first, Self.second]))
                == [.armTimer(deadline: clock.now + Self.timeout), .connect(Self.first)])
        #expect(s.state == .connecting)
        #expect(withoutTimers(s.connected()) == [])
        #expect(s.state == .greeting)
        #expect(s.takeTranscript() == [.connected("192.0.2.1:25")])
    }

    @Test func theGreetingMayHaveAShorterTimer() {
        var s = session(greetingTimeout: 2_000)
        _ = s.start()
        _ = s.resolved(.success([Self.first]))
        #expect(s.connected() == [.armTimer(deadline: clock.now + 2_000)])
        // EHLO's reply gets the full timeout again.
        #expect(s.received(Array("220 mx\r\n".utf8)).first == .armTimer(deadline: clock.now + Self.timeout))
    }

    @Test func anOAuth2RouteFetchesTheTokenBeforeConnectingAndAuthenticatesWithIt() {
        let credentials = UpstreamCredentials(username: "a@contoso.example", password: "",
                                              oauth: UpstreamOAuth(mechanism: .xoauth2, host: "mx.example", port: 25))
        var s = session(.implicit, oauth2: Self.oauth2, credentials: credentials)
        #expect(withoutTimers(s.start()) == [.fetchToken])
        #expect(s.state == .fetchingToken)
        #expect(withoutTimers(s.tokenFetched(UpstreamSession.grant("tok1"))) == [.resolve(host: "mx.example", port: 25)])
        _ = s.resolved(.success([Self.first]))
        #expect(withoutTimers(s.connected()) == [.startTLS])
        _ = s.tlsEstablished("TLSv1.3 TLS_AES_256_GCM_SHA384")
        _ = s.received(Array("220 mx\r\n".utf8))
        let auth = s.received(Array("250-mx\r\n250 AUTH XOAUTH2\r\n".utf8))
        let expected = "AUTH XOAUTH2 " + UpstreamBase64.encodeString(Array("user=a@contoso.example\u{1}auth=Bearer tok1\u{1}\u{1}".utf8))
        #expect(withoutTimers(auth) == [.write(Array((expected + "\r\n").utf8))])
        let transcript = s.takeTranscript().map(\.description)
        #expect(transcript.prefix(3) == ["-- oauth2 token: fetched from https://login.example/token, access token ******** valid 3600 s",
                                         "-- connected to 192.0.2.1:25",
                                         "-- TLS established: TLSv1.3 TLS_AES_256_GCM_SHA384"])
        #expect(!transcript.joined().contains("tok1"))
    }

    @Test func aTokenFailureBeforeConnectingEndsTheSessionWithoutAConnection() {
        var s = session(oauth2: Self.oauth2)
        _ = s.start()
        let error = OAuth2TokenError(endpoint: "https://login.example/token", httpStatus: 401, error: "invalid_client")
        let actions = s.tokenFailed(error)
        let failure = UpstreamFailure(step: .token, detail: error.description, reason: .tokenFailed(error))
        #expect(actions == [.armTimer(deadline: nil), .sessionFailed(failure), .close])
        #expect(s.takeTranscript().map(\.description) == ["-- oauth2 token: FAILED: \(error.detail)"])
    }

    @Test func dnsFailuresAreTyped() {
        var s = session()
        _ = s.start()
        let error = ResolveError(host: "mx.example", reason: "Name or service not known", isTemporary: false)
        let failure = Self.failure(s.resolved(.failure(error)))
        #expect(failure == UpstreamFailure(step: .connect, detail: "DNS: cannot resolve mx.example: Name or service not known",
                                           reason: .dnsFailed(error)))
        #expect(s.state == .closed)

        var empty = session()
        _ = empty.start()
        #expect(Self.failure(empty.resolved(.success([])))?.detail == "DNS: cannot resolve mx.example: the name has no address")
    }

    // MARK: Each address in turn

    @Test func theFirstAddressRefusesTheSecondWorks() {
        var s = connecting()
        let refused = ConnectError(address: "192.0.2.1:25", reason: "Connection refused", timedOut: false, refused: true)
        #expect(withoutTimers(s.connectFailed(refused)) == [.connect(Self.second)])
        #expect(s.peer == Self.second)
        _ = s.connected()
        #expect(s.state == .greeting)
        #expect(s.takeTranscript() == [.connected("[2001:db8::1]:25")])
    }

    @Test func everyAddressRefusedIsOneFailureNamingEach() {
        var s = connecting()
        let errors = [ConnectError(address: "192.0.2.1:25", reason: "Connection refused", timedOut: false, refused: true),
                      ConnectError(address: "[2001:db8::1]:25", reason: "Network is unreachable", timedOut: false)]
        _ = s.connectFailed(errors[0])
        let actions = s.connectFailed(errors[1])
        let failure = Self.failure(actions)
        #expect(failure?.step == .connect)
        #expect(failure?.detail == "connect to 192.0.2.1:25 failed: Connection refused; "
            + "connect to [2001:db8::1]:25 failed: Network is unreachable")
        #expect(failure?.reason == .connectFailed(errors))
        #expect(actions.last == .close)
    }

    @Test func anAddressThatDoesNotAnswerInTimeIsSkipped() {
        var s = connecting()
        clock.advance(Self.timeout)
        #expect(s.timedOut() == [.armTimer(deadline: clock.now + Self.timeout), .connect(Self.second)])
        clock.advance(Self.timeout)
        let failure = Self.failure(s.timedOut())
        #expect(failure?.detail == "connect to 192.0.2.1:25 timed out (a firewall may be blocking this port); "
            + "connect to [2001:db8::1]:25 timed out (a firewall may be blocking this port)")
        guard case .connectFailed(let errors)? = failure?.reason else {
            Issue.record("expected connectFailed, got \(String(describing: failure?.reason))")
            return
        }
        #expect(errors.map(\.timedOut) == [true, true])
    }

    // MARK: Timeouts, each in its own words

    @Test func eachSetupStateTimesOutInItsOwnWords() {
        var token = session(oauth2: Self.oauth2)
        _ = token.start()
        let tokenTimeout = Self.failure(token.timedOut())
        #expect(tokenTimeout?.detail == "timeout while fetching the oauth2 token from https://login.example/token")
        #expect(tokenTimeout?.step == .token)
        #expect(tokenTimeout?.reason == .timeout(.fetchingToken))

        var dns = session()
        _ = dns.start()
        let dnsTimeout = Self.failure(dns.timedOut())
        #expect(dnsTimeout == UpstreamFailure(step: .timeout, detail: "timeout while resolving mx.example",
                                              reason: .timeout(.resolving)))
        #expect(dns.state == .closed)
    }

    @Test func implicitAndStartTLSHandshakeTimeoutsNameTheServer() {
        var implicit = connecting(.implicit)
        #expect(withoutTimers(implicit.connected()) == [.startTLS])
        #expect(implicit.state == .implicitTLSHandshake)
        let implicitTimeout = Self.failure(implicit.timedOut())
        #expect(implicitTimeout?.detail == "timeout during the TLS handshake with mx.example:25")
        #expect(implicitTimeout?.reason == .timeout(.implicitTLSHandshake))

        var starttls = startTLSHandshake()
        let starttlsTimeout = Self.failure(starttls.timedOut())
        #expect(starttlsTimeout?.detail == "timeout during the TLS handshake with mx.example:25")
        #expect(starttlsTimeout?.step == .timeout)
        #expect(starttlsTimeout?.reason == .timeout(.tlsHandshake))
    }

    @Test func handshakeProgressRestartsItsTimer() {
        var s = connecting(.implicit)
        _ = s.connected()
        clock.advance(20_000)
        #expect(s.tlsHandshakeProgressed() == [.armTimer(deadline: clock.now + Self.timeout)])
        #expect(s.state == .implicitTLSHandshake)
    }

    // MARK: TLS failures

    /// STARTTLS accepted: the handshake is the driver's now.
    func startTLSHandshake() -> UpstreamSession {
        var s = connecting(.starttls)
        _ = s.connected()
        _ = s.received(Array("220 mx\r\n".utf8))
        _ = s.received(Array("250-mx\r\n250 STARTTLS\r\n".utf8))
        #expect(withoutTimers(s.received(Array("220 go ahead\r\n".utf8))) == [.startTLS])
        return s
    }

    @Test func implicitAndStartTLSHandshakeFailuresReadAsBefore() {
        let certificate = TLSError.certificate(TLSCertificateFailure(kind: .selfSigned, code: 18, reason: "self-signed certificate",
                                                                     expectedHost: "mx.example", peerSubject: "/CN=mx"))
        var implicit = connecting(.implicit)
        _ = implicit.connected()
        let implicitFailure = Self.failure(implicit.tlsFailed(certificate))
        #expect(implicitFailure?.detail == certificate.description)
        #expect(implicitFailure?.detail.hasPrefix("certificate verification failed: self-signed certificate") == true)
        #expect(implicitFailure?.reason == .tlsFailed(certificate))

        var starttls = startTLSHandshake()
        let actions = starttls.tlsFailed(certificate)
        #expect(Self.failure(actions)?.detail == "TLS handshake failed: " + certificate.description)
        #expect(Self.failure(actions)?.step == .tls)
        #expect(actions.last == .close, "nothing more can be said on the socket: no QUIT")

        let garbage = TLSError.handshake(reason: "wrong version number")
        var implicitGarbage = connecting(.implicit)
        _ = implicitGarbage.connected()
        var starttlsGarbage = startTLSHandshake()
        let words = "TLS handshake failed: wrong version number (the server did not answer with TLS: the port may expect STARTTLS or no TLS)"
        #expect(Self.failure(implicitGarbage.tlsFailed(garbage))?.detail == words)
        #expect(Self.failure(starttlsGarbage.tlsFailed(garbage))?.detail == words)

        var plaintext = connecting(.implicit)
        _ = plaintext.connected()
        let spoke = TLSError.peerSpokePlaintext(firstLine: "220 mx ESMTP")
        #expect(Self.failure(plaintext.tlsFailed(spoke))?.detail == "TLS handshake failed: \(spoke)")
    }

    @Test func tlsSetupAndAClosedSocketDuringTheHandshake() {
        var setup = connecting(.implicit)
        _ = setup.connected()
        let file = TLSError.file(path: "/etc/ca.pem", reason: "No such file or directory")
        #expect(Self.failure(setup.tlsSetupFailed(file))
                == UpstreamFailure(step: .tls, detail: "TLS setup: cannot use TLS file /etc/ca.pem: No such file or directory",
                                   reason: .tlsFailed(file)))

        var closed = startTLSHandshake()
        let failure = Self.failure(closed.connectionClosed(SystemError("read", errno: 104)))
        #expect(failure?.detail.hasPrefix("connection closed during the TLS handshake: read") == true)
        #expect(failure?.reason == .connectionClosed(.tlsHandshake))
    }

    @Test func aBrokenTLSSessionFailsTheSessionNotTheMessage() {
        var s = connecting(.implicit)
        _ = s.connected()
        _ = s.tlsEstablished()
        _ = s.received(Array("220 mx\r\n".utf8))
        _ = s.received(Array("250 mx\r\n".utf8))
        _ = s.send(message: UpstreamMessage(sender: "a@x", recipients: ["b@y"], content: Array("hi\r\n".utf8)))
        let actions = s.tlsSessionFailed(.protocolError(reason: "decryption failed"))
        #expect(withoutTimers(actions) == [
            .sessionFailed(UpstreamFailure(step: .tls, detail: "TLS: TLS session failed: decryption failed",
                                           reason: .tlsSessionFailed(.protocolError(reason: "decryption failed")))),
            .close,
        ])
    }

    // MARK: Late and stray events

    @Test func answersAfterTheSessionEndedAreIgnored() {
        var s = session()
        _ = s.start()
        _ = s.timedOut()
        #expect(s.resolved(.success([Self.first])) == [])
        #expect(s.connectFailed(ConnectError(address: "x", reason: "y", timedOut: false)) == [])
        #expect(s.state == .closed)
    }

    @Test func quitBeforeTheConnectionIsUpJustStops() {
        var s = connecting()
        #expect(s.quit() == [.armTimer(deadline: nil), .close])
        #expect(s.state == .closed)
    }
}
