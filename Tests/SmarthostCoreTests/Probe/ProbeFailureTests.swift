import Testing
@testable import SmarthostCore

/// `ProbeFailure.classify` as a pure function: the cases a loopback upstream cannot easily
/// produce (DNS, a firewall that drops, timeouts mid-dialogue).
@Suite struct ProbeFailureTests {
    private func classify(_ failure: UpstreamFailure, mode: TLSMode = .starttls,
                          _ configure: (inout ProbeFailure.Observations) -> Void = { _ in }) -> ProbeFailure {
        var observed = ProbeFailure.Observations()
        observed.greetingWaitMilliseconds = 10_000
        configure(&observed)
        return ProbeFailure.classify(failure, mode: mode, endpoint: "smtp.example.com:587", observed: observed)
    }

    @Test func dnsFailureIsTheDNSStep() {
        let error = ResolveError(host: "smtp.exmaple.com", reason: "Name or service not known", isTemporary: false)
        let probe = classify(UpstreamFailure(step: .connect, detail: error.description, reason: .dnsFailed(error)))
        #expect(probe.step == .dns)
        #expect(probe.explanation == "DNS: cannot resolve smtp.exmaple.com: Name or service not known")
        #expect(probe.hint?.contains("host name") == true)
    }

    @Test func connectTimeoutSuggestsABlockedPort() {
        let error = ConnectError(address: "192.0.2.1:587", reason: "timed out", timedOut: true)
        let probe = classify(UpstreamFailure(step: .connect, detail: error.description, reason: .connectFailed([error])))
        #expect(probe.step == .connect)
        #expect(probe.explanation.contains("timed out"))
        #expect(probe.hint?.contains("may be blocked by a firewall") == true)
    }

    @Test func silentServerAfterConnectIsAnImplicitTLSPort() {
        let probe = classify(UpstreamFailure(step: .timeout, detail: "timeout while waiting for the greeting")) {
            $0.connected = true
        }
        #expect(probe.step == .greeting)
        #expect(probe.explanation == "no SMTP greeting from smtp.example.com:587 within 10 s")
        #expect(probe.hint?.hasSuffix("use tls: implicit") == true)
    }

    @Test func garbageBeforeAnyReplyIsAnImplicitTLSPortToo() {
        let failure = UpstreamFailure(step: .protocol, detail: "malformed reply line: ?? while waiting for the greeting")
        let probe = classify(failure, mode: .none) { $0.connected = true }
        #expect(probe.step == .greeting)
        #expect(probe.hint?.contains("implicit TLS") == true)
    }

    @Test func timeoutsNameTheStepOfTheLastCommand() {
        let timeout = UpstreamFailure(step: .timeout, detail: "timeout while sending MAIL FROM")
        let seen: (String) -> ProbeFailure.Step = { command in
            self.classify(timeout) {
                $0.connected = true
                $0.sawReply = true
                $0.tlsEstablished = true
                $0.lastCommand = command
            }.step
        }
        #expect(seen("MAIL FROM:<a@b.example>") == .sender)
        #expect(seen("RCPT TO:<c@d.example>") == .recipient)
        #expect(seen("AUTH PLAIN ********") == .auth)
        #expect(seen("EHLO relay.test") == .ehlo)
        let afterData = classify(UpstreamFailure(step: .timeout, detail: "timeout while sending end of data",
                                                 mayHaveBeenDelivered: true)) {
            $0.connected = true
            $0.sawReply = true
            $0.dataSent = true
        }
        #expect(afterData.step == .data)
        #expect(afterData.explanation.contains("may have been delivered"))
    }

    @Test func refusedSenderSuggestsTheFromAddress() {
        let reply = SMTPReply(553, "5.7.1", "Sender address rejected: not owned by user")
        let probe = classify(UpstreamFailure(step: .mailFrom, reply: reply, detail: "sender refused")) {
            $0.connected = true
            $0.sawReply = true
        }
        #expect(probe.step == .sender)
        #expect(probe.explanation == "MAIL FROM rejected: 553 5.7.1 Sender address rejected: not owned by user")
        #expect(probe.hint?.contains("from:") == true)
    }

    @Test func credentialsWithoutTLSAreRefusedLocally() {
        let probe = classify(UpstreamFailure(step: .auth, detail: "refusing to send credentials without TLS",
                                                 reason: .plaintextAuthRefused), mode: .none) {
            $0.connected = true
            $0.sawReply = true
        }
        #expect(probe.step == .auth)
        #expect(probe.hint?.contains("tls: starttls") == true)
    }
}

/// Hints for tenants that turned Basic auth off, and for tokens Exchange refuses.
@Suite struct ProbeFailureOAuthHintTests {
    static func authFailure(_ code: Int, _ enhanced: String, _ text: String) -> UpstreamFailure {
        UpstreamFailure(step: .auth, reply: SMTPReply(code, enhanced, text), detail: "refused while authenticating")
    }

    @Test func basicAuthRefusedOnAPasswordRouteSaysUseOAuth2() {
        for failure in [Self.authFailure(550, "5.7.30", "Basic authentication is not supported for Client Submission."),
                        Self.authFailure(535, "5.7.139", "Authentication unsuccessful, basic authentication is disabled.")] {
            let probe = ProbeFailure.classify(failure, mode: .starttls, endpoint: "smtp.office365.com:587", observed: .init())
            #expect(probe.step == .auth)
            #expect(probe.hint?.contains("refuses Basic auth") == true && probe.hint?.contains("oauth2:") == true,
                    "\(probe.hint ?? "nil")")
        }
    }

    @Test func exchange535573OnAnOAuthRouteNamesTheExchangeSideCauses() {
        let failure = Self.authFailure(535, "5.7.3", "Authentication unsuccessful")
        let probe = ProbeFailure.classify(failure, mode: .starttls, endpoint: "smtp.office365.com:587", observed: .init(),
                                          oauth: true)
        #expect(probe.hint?.contains("New-ServicePrincipal") == true)
        #expect(probe.hint?.contains("Add-MailboxPermission") == true)
        #expect(probe.hint?.contains("SMTP.SendAsApp") == true)
    }

    @Test func tokenEndpointFailureIsItsOwnStep() {
        let error = OAuth2TokenError(endpoint: "https://login.microsoftonline.com/t/oauth2/v2.0/token", httpStatus: 400,
                                     error: "unauthorized_client", errorDescription: "AADSTS700016: Application with identifier 'x' was not found")
        let failure = UpstreamFailure(step: .token, detail: error.description, reason: .tokenFailed(error))
        let probe = ProbeFailure.classify(failure, mode: .starttls, endpoint: "smtp.office365.com:587", observed: .init(),
                                          oauth: true)
        #expect(probe.step == .token)
        #expect(probe.description.hasPrefix("failed at oauth2 token: https://login.microsoftonline.com"))
        #expect(probe.hint?.contains("client_id and tenant") == true)
    }
}

/// Each diagnosis that once read `detail` now reads the typed reason: the same words
/// without the reason get no hint, and the reason decides whatever the words say.
@Suite struct ProbeFailureTypedReasonTests {
    private func classify(_ failure: UpstreamFailure, mode: TLSMode = .starttls,
                          _ configure: (inout ProbeFailure.Observations) -> Void = { _ in }) -> ProbeFailure {
        var observed = ProbeFailure.Observations()
        observed.connected = true
        observed.sawReply = true
        configure(&observed)
        return ProbeFailure.classify(failure, mode: mode, endpoint: "smtp.example.com:587", observed: observed)
    }

    @Test func starttlsNotOfferedIsReadFromTheReason() {
        let typed = classify(UpstreamFailure(step: .tls, detail: "server does not offer STARTTLS", reason: .starttlsNotOffered))
        #expect(typed.step == .tlsHandshake)
        #expect(typed.hint?.contains("use its STARTTLS port (587)") == true)
        let wordsOnly = classify(UpstreamFailure(step: .tls, detail: "server does not offer STARTTLS"))
        #expect(wordsOnly.hint == nil)
    }

    @Test func plaintextAuthRefusedIsReadFromTheReason() {
        let typed = classify(UpstreamFailure(step: .auth, detail: "anything", reason: .plaintextAuthRefused), mode: .none)
        #expect(typed.hint?.contains("allow_plaintext_auth") == true)
        let wordsOnly = classify(UpstreamFailure(step: .auth, detail: "refusing to send credentials without TLS"), mode: .none)
        #expect(wordsOnly.hint == nil)
    }

    @Test func aTimeoutNamesTheStateItHappenedInNotTheLastCommandSent() {
        // Pipelined: MAIL, RCPT and DATA went out together; the RCPT reply never came.
        let timeout = UpstreamFailure(step: .timeout, detail: "timeout while sending RCPT TO", reason: .timeout(.rcptTo(index: 0)))
        let probe = classify(timeout) {
            $0.tlsEstablished = true
            $0.lastCommand = "DATA"
        }
        #expect(probe.step == .recipient)
    }

    @Test func aDNSTimeoutOnAnImplicitRouteIsNotBlamedOnTheHandshake() {
        let timeout = UpstreamFailure(step: .timeout, detail: "timeout while resolving smtp.example.com",
                                      reason: .timeout(.resolving))
        let probe = classify(timeout, mode: .implicit) {
            $0.connected = false
            $0.sawReply = false
        }
        #expect(probe.step == .dns)
        #expect(probe.hint == nil)
        let handshake = UpstreamFailure(step: .timeout, detail: "timeout during the TLS handshake with smtp.example.com:587",
                                        reason: .timeout(.implicitTLSHandshake))
        let silent = classify(handshake, mode: .implicit) { $0.sawReply = false }
        #expect(silent.step == .tlsHandshake)
        #expect(silent.hint?.contains("implicit-TLS port") == true)
    }

    @Test func aCertificateFailureIsTheCertificateStep() {
        let error = TLSError.certificate(TLSCertificateFailure(kind: .expired, code: 10, reason: "certificate has expired",
                                                               expectedHost: "smtp.example.com", peerSubject: nil))
        let probe = classify(UpstreamFailure(step: .tls, detail: error.description, reason: .tlsFailed(error)))
        #expect(probe.step == .certificate)
        #expect(probe.explanation.contains("has expired"))
    }
}
