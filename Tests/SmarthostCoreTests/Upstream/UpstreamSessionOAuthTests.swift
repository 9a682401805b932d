import Testing
@testable import SmarthostCore

/// XOAUTH2 and OAUTHBEARER in the session value: exact bytes, the error challenge and its
/// required answer, one fresh token and one more AUTH, masked transcripts.
@Suite struct UpstreamSessionOAuthTests {
    static func session(_ mechanism: UpstreamOAuthMechanism = .xoauth2, token: String = "tok1") -> UpstreamSession {
        let credentials = UpstreamCredentials(username: "alerts@contoso.example", password: token,
                                              oauth: UpstreamOAuth(mechanism: mechanism, host: "smtp.example", port: 587))
        return UpstreamSession(target: .testing(UpstreamParameters(ehloName: "relay.example", tlsMode: .implicit,
                                                                   credentials: credentials, recordTranscript: true)),
                               clock: { 0 })
    }

    static func writes(_ actions: [UpstreamAction]) -> [String] {
        actions.compactMap { if case .write(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil } }
    }

    /// Greeting and EHLO offering `auth`; returns what the session sent after the EHLO reply.
    static func open(_ session: inout UpstreamSession, auth: String) -> [UpstreamAction] {
        _ = session.openForTesting()
        _ = session.received(Array("220 mx ESMTP\r\n".utf8))
        return session.received(Array("250-mx\r\n250 AUTH \(auth)\r\n".utf8))
    }

    static func b64(_ text: String) -> String { UpstreamBase64.encodeString(Array(text.utf8)) }

    @Test func xoauth2InitialResponseIsExact() {
        var s = Self.session()
        let sent = Self.writes(Self.open(&s, auth: "LOGIN PLAIN XOAUTH2"))
        #expect(sent == ["AUTH XOAUTH2 " + Self.b64("user=alerts@contoso.example\u{1}auth=Bearer tok1\u{1}\u{1}") + "\r\n"])
        #expect(Self.writes(s.received(Array("235 2.7.0 Authentication successful\r\n".utf8))).isEmpty)
        #expect(s.state == .ready)
        let transcript = s.takeTranscript().map(\.description)
        #expect(transcript.contains("C: AUTH XOAUTH2 ********"))
        #expect(!transcript.joined().contains("tok1"))
    }

    @Test func oauthbearerHasTheGS2HeaderHostAndPort() {
        var s = Self.session(.oauthbearer)
        let sent = Self.writes(Self.open(&s, auth: "OAUTHBEARER XOAUTH2"))
        #expect(sent == ["AUTH OAUTHBEARER "
            + Self.b64("n,a=alerts@contoso.example,\u{1}host=smtp.example\u{1}port=587\u{1}auth=Bearer tok1\u{1}\u{1}") + "\r\n"])
    }

    @Test func theOtherMechanismWhenTheConfiguredOneIsNotOffered() {
        var s = Self.session(.xoauth2)
        #expect(Self.writes(Self.open(&s, auth: "OAUTHBEARER")).first?.hasPrefix("AUTH OAUTHBEARER ") == true)
        var t = Self.session(.xoauth2)
        let actions = Self.open(&t, auth: "PLAIN LOGIN")
        let failure = actions.compactMap { if case .sessionFailed(let f) = $0 { f } else { nil } }.first
        #expect(failure?.detail == "server offers neither XOAUTH2 nor OAUTHBEARER (offers PLAIN LOGIN)")
        #expect(!Self.writes(actions).contains { $0.hasPrefix("AUTH") }, "never a password mechanism with a token")
    }

    @Test func googleErrorChallengeGetsTheEmptyReplyThenOneFreshTokenThenSucceeds() {
        var s = Self.session(.xoauth2)
        _ = Self.open(&s, auth: "XOAUTH2")
        let challenge = Self.b64(#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#)
        #expect(Self.writes(s.received(Array("334 \(challenge)\r\n".utf8))) == ["\r\n"], "XOAUTH2: an empty line")
        let refused = s.received(Array("535 5.7.8 Username and Password not accepted\r\n".utf8))
        #expect(refused == [.needFreshToken])
        #expect(s.state == .awaitingToken)
        let again = Self.writes(s.tokenFetched(UpstreamSession.grant("tok2")))
        #expect(again == ["AUTH XOAUTH2 " + Self.b64("user=alerts@contoso.example\u{1}auth=Bearer tok2\u{1}\u{1}") + "\r\n"])
        _ = s.received(Array("235 2.7.0 Accepted\r\n".utf8))
        #expect(s.state == .ready)
        let transcript = s.takeTranscript().map(\.description).joined(separator: "\n")
        #expect(transcript.contains(#"-- error challenge: {"status":"401""#))
        #expect(!transcript.contains("tok1") && !transcript.contains("tok2"))
    }

    @Test func oauthbearerErrorChallengeGetsA01AndASecondRefusalIsFinal() {
        var s = Self.session(.oauthbearer)
        _ = Self.open(&s, auth: "OAUTHBEARER")
        let challenge = Self.b64(#"{"status":"invalid_token"}"#)
        #expect(Self.writes(s.received(Array("334 \(challenge)\r\n".utf8))) == ["AQ==\r\n"], "RFC 7628 §3.2.3: %x01")
        #expect(s.received(Array("535 5.7.8 no\r\n".utf8)) == [.needFreshToken])
        _ = s.tokenFetched(UpstreamSession.grant("tok2"))
        _ = s.received(Array("334 \(challenge)\r\n".utf8))
        let final = s.received(Array("535 5.7.8 still no\r\n".utf8))
        let failure = final.compactMap { if case .sessionFailed(let f) = $0 { f } else { nil } }.first
        #expect(failure?.step == .auth)
        #expect(failure?.reply?.code == 535)
        #expect(failure?.detail.contains("invalid_token") == true)
        #expect(Self.writes(final) == ["QUIT\r\n"])
    }

    @Test func microsoftRefusalWithoutChallengeAndATokenEndpointFailure() {
        var s = Self.session()
        _ = Self.open(&s, auth: "XOAUTH2")
        #expect(s.received(Array("535 5.7.3 Authentication unsuccessful\r\n".utf8)) == [.needFreshToken])
        let error = OAuth2TokenError(endpoint: "https://e/t", httpStatus: 401, error: "invalid_client")
        let actions = s.tokenFailed(error)
        #expect(actions.contains(.sessionFailed(UpstreamFailure(step: .token, detail: error.description,
                                                                reason: .tokenFailed(error)))))
        #expect(Self.writes(actions) == ["QUIT\r\n"])
    }

    @Test func aBusyServerIsNotATokenProblem() {
        var s = Self.session()
        _ = Self.open(&s, auth: "XOAUTH2")
        let actions = s.received(Array("454 4.3.0 Temporary server error\r\n".utf8))
        #expect(!actions.contains(.needFreshToken))
        #expect(actions.contains { if case .sessionFailed(let f) = $0 { f.step == .auth } else { false } })
    }

    @Test func credentialsDescribeTheTokenMasked() {
        let credentials = UpstreamCredentials(username: "u", password: "tok-secret",
                                              oauth: UpstreamOAuth(mechanism: .xoauth2, host: "h", port: 1))
        #expect("\(credentials)" == "u (token ********)")
        #expect(!String(reflecting: credentials).contains("tok-secret"))
    }
}
