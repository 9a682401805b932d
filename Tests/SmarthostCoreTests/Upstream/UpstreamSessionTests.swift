import Testing
@testable import SmarthostCore

/// Drives a session like the reactor would and keeps every byte written, so each test can
/// assert the exact dialogue.
private struct Dialogue {
    var session: UpstreamSession
    var written = ""

    init(_ mode: UpstreamTLSMode, credentials: UpstreamCredentials? = nil, allowPlaintextAuth: Bool = false) {
        session = UpstreamSession(target: .testing(UpstreamParameters(
            ehloName: "relay.example", tlsMode: mode, credentials: credentials,
            allowPlaintextAuth: allowPlaintextAuth, recordTranscript: true)), clock: { 0 })
    }

    /// Appends writes to `written` and returns them with the other actions but the
    /// timer's, as text.
    @discardableResult
    mutating func take(_ actions: [UpstreamAction]) -> [String] {
        withoutTimers(actions).map { action in
            if case .write(let bytes) = action {
                let text = String(decoding: bytes, as: UTF8.self)
                written += text
                return text
            }
            return action.description
        }
    }

    @discardableResult
    mutating func server(_ text: String) -> [String] { server(Array(text.utf8)) }
    @discardableResult
    mutating func server(_ bytes: [UInt8]) -> [String] { take(session.received(bytes)) }
    @discardableResult
    mutating func connect() -> [String] { take(session.openForTesting()) }
    @discardableResult
    mutating func tls() -> [String] { take(session.tlsEstablished()) }
    @discardableResult
    mutating func send(_ message: UpstreamMessage) -> [String] { take(session.send(message: message)) }

    /// Greeting and EHLO on a plaintext server offering `extensions`.
    @discardableResult
    mutating func open(_ extensions: String...) -> [String] {
        let lines = ["mx.example"] + (extensions.isEmpty ? ["PIPELINING", "8BITMIME"] : extensions)
        connect()
        server("220 mx.example ESMTP\r\n")
        return server(SMTPReply(code: 250, enhanced: nil, lines: lines).wireBytes)
    }
}

private let alice = UpstreamCredentials(username: "alice", password: "s3cret")
private let message = UpstreamMessage(sender: "app@relay.example", recipients: ["a@x.example", "b@x.example"],
                                      content: Array("Subject: t\r\n\r\nhi\r\n".utf8))
private let data = "Subject: t\r\n\r\nhi\r\n.\r\n"

/// Pulls the delivery result out of an action list rendered by `Dialogue`; the session
/// is asked directly instead, through the typed actions.
private func result(_ actions: [UpstreamAction]) -> UpstreamDeliveryResult? {
    for case .messageResult(let result) in actions { return result }
    return nil
}

private func sessionFailure(_ actions: [UpstreamAction]) -> UpstreamFailure? {
    for case .sessionFailed(let failure) in actions { return failure }
    return nil
}

@Suite struct UpstreamSessionTests {
    // MARK: Setup per TLS mode

    @Test func starttlsWithAuthPlainFullDialogue() {
        var d = Dialogue(.starttls, credentials: alice)
        #expect(d.connect() == [])
        #expect(d.session.timeoutKind == .greeting)
        #expect(d.server("220 mx.example ESMTP\r\n") == ["EHLO relay.example\r\n"])
        #expect(d.server("250-mx.example\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n") == ["STARTTLS\r\n"])
        #expect(d.server("220 2.0.0 go ahead\r\n") == ["startTLS"])
        #expect(d.session.timeoutKind == .tlsHandshake)
        #expect(d.tls() == ["EHLO relay.example\r\n"])
        #expect(d.server("250-mx.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                == ["AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"])
        #expect(d.server("235 2.7.0 Authentication successful\r\n") == ["ready"])
        #expect(d.session.timeoutKind == .idle)
        #expect(d.send(message) == ["MAIL FROM:<app@relay.example>\r\nRCPT TO:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n"])
        #expect(d.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n") == [data])
        let final = d.session.received(Array("250 2.0.0 Ok: queued as 1\r\n".utf8))
        #expect(final.last == .ready)
        let delivered = result(final)
        #expect(delivered?.failure == nil)
        #expect(delivered?.delivered == ["a@x.example", "b@x.example"])
        #expect(delivered?.dataReply == SMTPReply(250, "2.0.0", "Ok: queued as 1"))
        #expect(d.take(d.session.quit()) == ["QUIT\r\n"])
        #expect(d.server("221 2.0.0 Bye\r\n") == ["close"])
        #expect(d.session.state == .closed)
    }

    @Test func implicitTLSStartsWithEHLOAndAuthenticatesAtOnce() {
        var d = Dialogue(.implicit, credentials: alice)
        #expect(d.open("AUTH LOGIN PLAIN") == ["AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"])
        #expect(d.server("235 ok\r\n") == ["ready"])
        #expect(d.written == "EHLO relay.example\r\nAUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n")
    }

    @Test func plaintextWithoutCredentialsSendsOneCommandAtATimeWithoutPipelining() {
        var d = Dialogue(.none)
        #expect(d.open("SIZE 1000") == ["ready"])
        #expect(d.send(message) == ["MAIL FROM:<app@relay.example> SIZE=18\r\n"])
        #expect(d.server("250 ok\r\n") == ["RCPT TO:<a@x.example>\r\n"])
        #expect(d.server("250 ok\r\n") == ["RCPT TO:<b@x.example>\r\n"])
        #expect(d.server("250 ok\r\n") == ["DATA\r\n"])
        #expect(d.server("354 go\r\n") == [data])
        #expect(d.server("250 ok\r\n") == ["messageResult(ok)", "ready"])
    }

    @Test func heloFallbackOnlyWhenNothingNeedsEHLO() {
        var d = Dialogue(.none)
        d.connect()
        d.server("220 old.example\r\n")
        #expect(d.server("502 5.5.2 what?\r\n") == ["HELO relay.example\r\n"])
        #expect(d.server("250 old.example\r\n") == ["ready"])

        var secure = Dialogue(.starttls)
        secure.connect()
        secure.server("220 old.example\r\n")
        let actions = secure.session.received(Array("502 5.5.2 what?\r\n".utf8))
        #expect(sessionFailure(actions)?.step == .ehlo)
        #expect(secure.take(actions).last == "QUIT\r\n")
    }

    @Test func greetingRefused() {
        var d = Dialogue(.none)
        d.connect()
        let actions = d.session.received(Array("554 5.7.1 go away\r\n".utf8))
        #expect(sessionFailure(actions)?.summary == "greeting rejected: 554 5.7.1 go away")
        #expect(d.take(actions) == ["sessionFailed(greeting rejected: 554 5.7.1 go away)", "QUIT\r\n"])
    }

    // MARK: STARTTLS is required and clean

    @Test func starttlsNotOfferedFailsAndSendsNothingElse() {
        var d = Dialogue(.starttls, credentials: alice)
        d.connect()
        d.server("220 mx.example\r\n")
        let actions = d.session.received(Array("250-mx.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n".utf8))
        let failure = sessionFailure(actions)
        #expect(failure?.step == .tls)
        #expect(failure?.summary == "server does not offer STARTTLS")
        d.take(actions)
        #expect(d.written == "EHLO relay.example\r\nQUIT\r\n")
        #expect(d.server("221 bye\r\n") == ["close"])
    }

    @Test func starttllsRefusedIsATLSFailure() {
        var d = Dialogue(.starttls)
        d.open("STARTTLS")
        let actions = d.session.received(Array("454 4.7.0 TLS not available\r\n".utf8))
        #expect(sessionFailure(actions)?.summary == "STARTTLS rejected: 454 4.7.0 TLS not available")
    }

    @Test func plaintextInjectedAfterThe220IsDiscarded() {
        var d = Dialogue(.starttls, credentials: alice)
        d.open("STARTTLS")
        // A man in the middle appends a fake EHLO reply to the 220 in the same segment.
        #expect(d.server("220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n") == ["startTLS"])
        #expect(d.server("250 more plaintext during the handshake\r\n") == [])
        #expect(d.session.capabilities == nil)
        #expect(d.tls() == ["EHLO relay.example\r\n"])
        // The real post-TLS EHLO: only these capabilities count (LOGIN, no PLAIN).
        #expect(d.server("250-mx.example\r\n250 AUTH LOGIN\r\n") == ["AUTH LOGIN\r\n"])
    }

    @Test func tlsHandshakeFailureNamesTheStep() {
        var d = Dialogue(.starttls)
        d.open("STARTTLS")
        d.server("220 go\r\n")
        let actions = d.session.tlsFailed(.handshake(reason: "certificate verify failed: hostname mismatch"))
        #expect(sessionFailure(actions)?.step == .tls)
        #expect(sessionFailure(actions)?.summary == "TLS handshake failed: certificate verify failed: hostname mismatch")
        #expect(actions.last == .close)
    }

    // MARK: AUTH

    @Test func authLoginExactBytes() {
        var d = Dialogue(.implicit, credentials: alice)
        #expect(d.open("AUTH=LOGIN") == ["AUTH LOGIN\r\n"])
        #expect(d.server("334 VXNlcm5hbWU6\r\n") == ["YWxpY2U=\r\n"])
        #expect(d.server("334 UGFzc3dvcmQ6\r\n") == ["czNjcmV0\r\n"])
        #expect(d.server("235 2.7.0 ok\r\n") == ["ready"])
    }

    @Test func authNeverBeforeTLS() {
        var d = Dialogue(.starttls, credentials: alice)
        d.open("STARTTLS", "AUTH PLAIN LOGIN")
        d.server("220 go\r\n")
        #expect(!d.written.contains("AUTH"))
        d.tls()
        d.server("250-mx.example\r\n250 AUTH PLAIN\r\n")
        #expect(d.written.hasSuffix("EHLO relay.example\r\nAUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"))
    }

    @Test func plaintextRouteRefusesAuthUnlessAllowed() {
        var refused = Dialogue(.none, credentials: alice)
        refused.connect()
        refused.server("220 mx\r\n")
        let actions = refused.session.received(Array("250-mx\r\n250 AUTH PLAIN\r\n".utf8))
        #expect(sessionFailure(actions)?.step == .auth)
        refused.take(actions)
        #expect(refused.written == "EHLO relay.example\r\nQUIT\r\n")

        var allowed = Dialogue(.none, credentials: alice, allowPlaintextAuth: true)
        #expect(allowed.open("AUTH PLAIN") == ["AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"])
    }

    @Test func authRejected() {
        var d = Dialogue(.implicit, credentials: alice)
        d.open("AUTH PLAIN")
        let actions = d.session.received(Array("535 5.7.8 Authentication credentials invalid\r\n".utf8))
        let failure = sessionFailure(actions)
        #expect(failure?.step == .auth)
        #expect(failure?.isPermanent == true)
        #expect(failure?.summary == "AUTH rejected: 535 5.7.8 Authentication credentials invalid")
        #expect(d.take(actions).last == "QUIT\r\n")
    }

    @Test func credentialsButNoAuthOffered() {
        var d = Dialogue(.implicit, credentials: alice)
        let actions = d.open("PIPELINING")
        #expect(actions.first == "sessionFailed(server does not offer AUTH)")
        var cram = Dialogue(.implicit, credentials: alice)
        #expect(cram.open("AUTH CRAM-MD5").first == "sessionFailed(server offers no usable AUTH mechanism (offers CRAM-MD5))")
    }

    @Test func secretsAreMaskedEverywhere() {
        var d = Dialogue(.implicit, credentials: alice)
        d.open("AUTH LOGIN")
        d.server("334 VXNlcm5hbWU6\r\n")
        d.server("334 UGFzc3dvcmQ6\r\n")
        d.server("535 5.7.8 no\r\n")
        let transcript = d.session.takeTranscript().map(\.description).joined(separator: "\n")
        #expect(transcript.contains("C: AUTH LOGIN"))
        #expect(transcript.contains("C: ********"))
        for secret in ["s3cret", "czNjcmV0", "YWxpY2U="] { #expect(!transcript.contains(secret)) }
        let parameters = UpstreamParameters(ehloName: "x", tlsMode: .starttls, credentials: alice)
        for text in ["\(alice)", String(reflecting: alice), "\(parameters)", String(reflecting: parameters)] {
            #expect(!text.contains("s3cret"), "\(text)")
        }
        #expect(UpstreamAction.write(Array("AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n".utf8)).description == "write(33 octets)")
    }

    // MARK: Transactions

    @Test func pipelinedRecipientsWithOneRefused() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        #expect(d.server("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n") == [data])
        let actions = d.session.received(Array("250 2.0.0 queued\r\n".utf8))
        let partial = result(actions)
        #expect(partial?.failure == nil)
        #expect(partial?.delivered == ["a@x.example"])
        #expect(partial?.refused == [UpstreamRecipientResult(recipient: "b@x.example", reply: SMTPReply(550, "5.1.1", "no such user"))])
        #expect(actions.last == .ready)
    }

    @Test func allRecipientsRefusedPipelinedEndsDataAndResets() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        d.server("250 ok\r\n550 5.1.1 nope\r\n")
        let actions = d.session.received(Array("450 4.2.1 later\r\n354 go anyway\r\n".utf8))
        #expect(d.take(actions) == [".\r\n"])
        let after = d.session.received(Array("554 5.5.1 no valid recipients\r\n".utf8))
        let refused = result(after)
        #expect(refused?.failure?.step == .rcptTo)
        #expect(refused?.failure?.reply == SMTPReply(450, "4.2.1", "later"))
        #expect(refused?.refused.count == 2)
        #expect(d.take(after).last == "RSET\r\n")
        #expect(d.server("250 ok\r\n") == ["ready"])
        #expect(!d.written.contains(data))
    }

    @Test func allRecipientsRefusedOneAtATime() {
        var d = Dialogue(.none)
        d.open("8BITMIME")
        d.send(UpstreamMessage(sender: "", recipients: ["a@x.example"], content: []))
        let actions = d.session.received(Array("250 ok\r\n".utf8) + Array("550 5.1.1 no\r\n".utf8))
        #expect(result(actions)?.failure?.summary == "RCPT TO rejected: 550 5.1.1 no")
        #expect(d.take(actions).last == "RSET\r\n")
        #expect(d.written.hasSuffix("MAIL FROM:<>\r\nRCPT TO:<a@x.example>\r\nRSET\r\n"))
    }

    @Test(arguments: [("451 4.3.0 try later", false), ("553 5.7.1 sender refused", true)])
    func mailFromRefused(_ text: String, _ permanent: Bool) {
        var d = Dialogue(.none)
        d.open("SIZE")
        d.send(message)
        let actions = d.session.received(Array((text + "\r\n").utf8))
        let failure = result(actions)?.failure
        #expect(failure?.step == .mailFrom)
        #expect(failure?.isPermanent == permanent)
        #expect(d.take(actions).last == "RSET\r\n")
    }

    @Test func pipelinedMailRefusedDrainsTheGroupThenResets() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        #expect(d.server("550 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n") == [])
        let actions = d.session.received(Array("503 5.5.1 no valid recipients\r\n".utf8))
        #expect(result(actions)?.failure?.summary == "MAIL FROM rejected: 550 5.7.1 sender refused")
        #expect(result(actions)?.refused == [])
        #expect(d.take(actions).last == "RSET\r\n")
    }

    @Test(arguments: ["451 4.3.0 later", "554 5.3.4 no"])
    func dataRefused(_ text: String) {
        var d = Dialogue(.none)
        d.open("SIZE")
        d.send(UpstreamMessage(sender: "s@x", recipients: ["a@x.example"], content: []))
        d.server("250 ok\r\n")
        let actions = d.session.received(Array(("250 ok\r\n" + text + "\r\n").utf8))
        #expect(result(actions)?.failure?.step == .data)
        #expect(d.take(actions).last == "RSET\r\n")
    }

    @Test(arguments: ["452 4.3.1 full", "550 5.7.1 spam"])
    func endOfDataRefusedNeedsNoReset(_ text: String) {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        d.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        let actions = d.session.received(Array((text + "\r\n").utf8))
        #expect(result(actions)?.failure?.step == .dataEnd)
        #expect(result(actions)?.failure?.mayHaveBeenDelivered == false)
        #expect(actions.last == .ready)
    }

    @Test func connectionCutAfterTheBodyMayHaveDelivered() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        d.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        let actions = d.session.connectionClosed()
        let failure = result(actions)?.failure
        #expect(failure?.mayHaveBeenDelivered == true)
        #expect(failure?.step == .dataEnd)
        #expect(failure?.summary == "connection closed while sending end of data (the message may have been delivered)")
        #expect(actions.last == .close)
    }

    @Test func timeoutAfterTheBodyMayHaveDelivered() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        d.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        let failure = result(d.session.timedOut())?.failure
        #expect(failure?.step == .timeout)
        #expect(failure?.detail == "timeout while sending end of data")
        #expect(failure?.mayHaveBeenDelivered == true)
    }

    @Test func garbageAfterTheBodyMayHaveDelivered() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        d.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        let failure = result(d.session.received(Array("2x0 what\r\n".utf8)))?.failure
        #expect(failure?.step == .protocol)
        #expect(failure?.mayHaveBeenDelivered == true)
        #expect(d.session.state == .closed)
    }

    @Test func cutBeforeTheBodyIsAPlainFailure() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        let failure = result(d.session.connectionClosed())?.failure
        #expect(failure?.step == .mailFrom)
        #expect(failure?.mayHaveBeenDelivered == false)
    }

    @Test func timeoutWhileWaitingForTheGreeting() {
        var d = Dialogue(.none)
        d.connect()
        let actions = d.session.timedOut()
        #expect(sessionFailure(actions)?.summary == "timeout while waiting for the greeting")
        // The spent timer is not re-armed, nor cancelled: closed needs none.
        #expect(actions == [.sessionFailed(UpstreamFailure(step: .timeout, detail: "timeout while waiting for the greeting",
                                                           reason: .timeout(.greeting))),
                            .close])
    }

    @Test func reuseForASecondMessageWithoutRSET() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        d.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        #expect(d.server("250 queued\r\n") == ["messageResult(ok)", "ready"])
        let second = UpstreamMessage(sender: "s@x", recipients: ["c@x.example"], content: Array("x".utf8),
                                     needs8BitMIME: true)
        #expect(d.send(second) == ["MAIL FROM:<s@x> BODY=8BITMIME\r\nRCPT TO:<c@x.example>\r\nDATA\r\n"])
        #expect(d.server("250 ok\r\n250 ok\r\n354 go\r\n") == ["x\r\n.\r\n"])
        #expect(d.server("250 queued\r\n") == ["messageResult(ok)", "ready"])
        #expect(!d.written.contains("RSET"))
    }

    @Test func idleTimeoutQuitsAndIdleCloseIsQuiet() {
        var d = Dialogue(.none)
        d.open()
        #expect(d.take(d.session.timedOut()) == ["QUIT\r\n"])
        #expect(d.take(d.session.connectionClosed()) == ["close"])

        var hungUp = Dialogue(.none)
        hungUp.open()
        #expect(hungUp.server("421 4.4.2 idle too long\r\n") == ["close"])
    }

    @Test func server421MidTransactionFailsAndCloses() {
        var d = Dialogue(.none)
        d.open("SIZE")
        d.send(message)
        let actions = d.session.received(Array("421 4.3.2 shutting down\r\n".utf8))
        #expect(result(actions)?.failure?.summary == "MAIL FROM rejected: 421 4.3.2 shutting down")
        #expect(actions.last == .close)
    }

    @Test func localRefusalsSendNothing() {
        var d = Dialogue(.none)
        d.open("SIZE 10")
        let big = d.session.send(message: message)
        #expect(result(big)?.failure?.detail == "message size 18 exceeds the server's limit of 10")
        #expect(result(big)?.failure?.isPermanent == true)
        #expect(big.last == .ready)
        let utf8 = d.session.send(message: UpstreamMessage(sender: "ü@x", recipients: ["a@x"], content: [],
                                                          needsSMTPUTF8: true))
        #expect(result(utf8)?.failure?.step == .mailFrom)
        #expect(d.written == "EHLO relay.example\r\n")
    }

    @Test func malformedReplyIsAProtocolFailure() {
        var d = Dialogue(.none)
        d.connect()
        let actions = d.session.received(Array("HTTP/1.1 400 Bad Request\r\n".utf8))
        #expect(sessionFailure(actions)?.step == .protocol)
        #expect(actions.last == .close)
    }

    @Test func transcriptShowsTheDialogue() {
        var d = Dialogue(.none)
        d.open()
        d.send(message)
        let transcript = d.session.takeTranscript().map(\.description)
        #expect(transcript == [
            "-- connected to 192.0.2.25:25", "S: 220 mx.example ESMTP", "C: EHLO relay.example",
            "S: 250-mx.example\nS: 250-PIPELINING\nS: 250 8BITMIME",
            "C: MAIL FROM:<app@relay.example>", "C: RCPT TO:<a@x.example>", "C: RCPT TO:<b@x.example>", "C: DATA",
        ])
    }
}
