import Foundation
import Testing
@testable import SmarthostCore

/// Helpers shared by the session suites of this file.
private enum Dialogue {
    static let date = "Sat, 22 Nov 2025 21:40:21 +0000"
    static let ehloReply = "250-relay.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
        + "250-ENHANCEDSTATUSCODES\r\n250 HELP\r\n"
    static let go = "354 End data with <CR><LF>.<CR><LF>\r\n"

    static func session(maxMessageSize: Int = 1000, maxRecipients: Int = 3, maxErrors: Int = 10,
                        allowed: Bool = true, bareLineFeed: BareLineFeedPolicy = .normalize) -> InboundSession {
        InboundSession(configuration: .init(
            hostname: "relay.test", maxMessageSize: maxMessageSize, maxRecipients: maxRecipients,
            clientAddress: "127.0.0.1", clientAllowed: allowed, maxErrors: maxErrors,
            clock: { 1_763_847_621 }, bareLineFeed: bareLineFeed))
    }

    /// A session greeted and past EHLO.
    static func ready(maxMessageSize: Int = 1000, maxRecipients: Int = 3, maxErrors: Int = 10,
                      bareLineFeed: BareLineFeedPolicy = .normalize) -> InboundSession {
        var session = session(maxMessageSize: maxMessageSize, maxRecipients: maxRecipients, maxErrors: maxErrors,
                              bareLineFeed: bareLineFeed)
        _ = session.start()
        _ = session.receive(bytes("EHLO app.local\r\n"))
        return session
    }

    /// A session that has sent 354 for one recipient.
    static func inData(maxMessageSize: Int = 1000, bareLineFeed: BareLineFeedPolicy = .normalize) -> InboundSession {
        var session = ready(maxMessageSize: maxMessageSize, bareLineFeed: bareLineFeed)
        _ = session.receive(bytes("MAIL FROM:<app@acme.example>\r\n"))
        _ = session.receive(bytes("RCPT TO:<u@example.com>\r\n"))
        _ = session.receive(bytes("DATA\r\n"))
        precondition(session.state == .data)
        return session
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func send(_ text: String) -> InboundAction { .send(bytes(text)) }

    static func content(_ text: String) -> InboundAction { .messageContent(bytes(text)) }

    /// Every reply byte in the actions, as text.
    static func replies(_ actions: [InboundAction]) -> String {
        actions.map { action in
            if case .send(let bytes) = action { String(decoding: bytes, as: UTF8.self) } else { "" }
        }.joined()
    }

    static func count(_ actions: [InboundAction], _ wanted: InboundAction) -> Int {
        actions.filter { $0 == wanted }.count
    }

    static func received(for recipient: String?, with proto: String = "ESMTP") -> String {
        "Received: from app.local ([127.0.0.1])\r\n\tby relay.test (smarthost) with \(proto)"
            + (recipient.map { "\r\n\tfor <\($0)>" } ?? "") + "; \(date)\r\n"
    }
}

private typealias D = Dialogue

/// A test argument shown escaped, so control characters stay readable in reports.
private struct Escaped: Sendable, CustomTestStringConvertible {
    let text: String
    var testDescription: String { text.debugDescription }
}

@Suite struct SMTPInboundSessionTests {
    @Test func greetingAndAccessDenied() {
        var session = D.session()
        #expect(session.start() == [D.send("220 relay.test ESMTP smarthost\r\n")])
        #expect(session.state == .greeting)
        #expect(session.pendingTimeout == .command)

        var denied = D.session(allowed: false)
        #expect(denied.start() == [D.send("554 5.7.1 relay.test Error: access denied for 127.0.0.1\r\n"), .close])
        #expect(denied.state == .closed)
        #expect(denied.receive(D.bytes("EHLO x\r\n")).isEmpty)
    }

    @Test func tooManyConnectionsReply() {
        #expect(InboundSession.tooManyConnectionsReply(hostname: "relay.test").wireBytes
            == D.bytes("421 4.7.0 relay.test Error: too many connections\r\n"))
    }

    @Test func fullDialogueWithExactBytes() {
        var session = D.session()
        _ = session.start()
        #expect(session.receive(D.bytes("EHLO app.local\r\n")) == [D.send(D.ehloReply)])
        #expect(session.receive(D.bytes("MAIL FROM:<app@acme.example> BODY=8BITMIME\r\n")) == [D.send("250 2.1.0 Ok\r\n")])
        #expect(session.receive(D.bytes("RCPT TO:<u@example.com>\r\n")) == [D.send("250 2.1.5 Ok\r\n")])
        let envelope = InboundEnvelope(
            sender: MailPath(localPart: "app", domain: "acme.example"),
            recipients: [MailPath(localPart: "u", domain: "example.com")], body: .eightBitMIME,
            heloName: "app.local", clientAddress: "127.0.0.1", withProtocol: .esmtp)
        #expect(session.receive(D.bytes("DATA\r\n"))
            == [.beginMessage(envelope), D.content(D.received(for: "u@example.com")), D.send(D.go)])
        #expect(session.pendingTimeout == .data)
        #expect(session.receive(D.bytes("Subject: hi\r\n\r\n..dot\r\n")) == [D.content("Subject: hi\r\n\r\n.dot\r\n")])
        #expect(session.receive(D.bytes(".\r\n")) == [.endMessage])
        #expect(session.state == .committing)
        #expect(session.wantsInputPaused)
        #expect(session.pendingTimeout == .none)
        #expect(session.messageCommitted(queueID: "4F2A") == [D.send("250 2.0.0 Ok: queued as 4F2A\r\n")])
        #expect(!session.wantsInputPaused)
        #expect(session.receive(D.bytes("QUIT\r\n")) == [D.send("221 2.0.0 Bye\r\n"), .close])
        #expect(session.state == .closed)
    }

    @Test func heloWorksAndIsPlainSMTP() {
        var session = D.session()
        _ = session.start()
        #expect(session.receive(D.bytes("HELO app.local\r\n")) == [D.send("250 relay.test\r\n")])
        let actions = session.receive(D.bytes("MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n"))
        #expect(actions.contains(D.content(D.received(for: "Postmaster", with: "SMTP"))))
    }

    @Test func pipelinedGroupGetsOneBatchedSendInOrder() {
        var session = D.ready()
        let actions = session.receive(D.bytes(
            "MAIL FROM:<a@x.example> SIZE=500\r\nRCPT TO:<b@x.example>\r\nRCPT TO:<bad@>\r\nRCPT TO:<c@x.example>\r\nDATA\r\n"))
        let envelope = InboundEnvelope(
            sender: MailPath(localPart: "a", domain: "x.example"),
            recipients: [MailPath(localPart: "b", domain: "x.example"), MailPath(localPart: "c", domain: "x.example")],
            declaredSize: 500, heloName: "app.local", clientAddress: "127.0.0.1")
        #expect(actions == [
            .beginMessage(envelope), D.content(D.received(for: nil)),
            D.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n501 5.1.3 Error: bad recipient address syntax\r\n250 2.1.5 Ok\r\n" + D.go),
        ])
    }

    /// A client on this host (`localPartsAllowed`) may name `<root>`: the envelope carries it
    /// without a domain, for the spooler to qualify; the same session for another client
    /// hears 553 and keeps its transaction.
    @Test func bareLocalPartsOnlyWhenTheClientIsOnThisHost() {
        var configuration = D.session().configuration
        configuration.localPartsAllowed = true
        var local = InboundSession(configuration: configuration)
        _ = local.start()
        _ = local.receive(D.bytes("EHLO app.local\r\n"))
        let actions = local.receive(D.bytes("MAIL FROM:<root>\r\nRCPT TO:<ops>\r\nDATA\r\n"))
        let envelope = InboundEnvelope(sender: MailPath(localPart: "root", domain: ""),
                                       recipients: [MailPath(localPart: "ops", domain: "")],
                                       heloName: "app.local", clientAddress: "127.0.0.1")
        #expect(actions == [.beginMessage(envelope), D.content(D.received(for: "ops")),
                            D.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + D.go)])
        var remote = D.ready()
        #expect(D.replies(remote.receive(D.bytes("MAIL FROM:<root>\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<ops>\r\n")))
            == "553 5.1.7 Error: sender address needs a domain (a bare local part is taken only from this host)\r\n"
            + "250 2.1.0 Ok\r\n553 5.1.3 Error: recipient address needs a domain (a bare local part is taken only from this host)\r\n")
        #expect(remote.state == .mail)
    }

    @Test func pipelinedCommandsGiveTheSameRepliesAtEverySplitPoint() {
        let script = D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nNOOP\r\nRSET\r\nVRFY x\r\n")
        let expected = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
            + "252 2.0.0 Cannot VRFY user; send mail and delivery will be attempted\r\n"
        for cut in 0...script.count {
            var session = D.ready()
            let actions = session.receive(script[..<cut]) + session.receive(script[cut...])
            #expect(D.replies(actions) == expected)
        }
    }

    @Test func bytesAfterDataBefore354AreRejected() {
        for tail in ["Subject: x\r\n\r\nbody\r\n.\r\n", ".\r\n", "X"] {
            var session = D.ready()
            let actions = session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n" + tail))
            #expect(actions == [D.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n"), .close])
            #expect(session.state == .closed)
        }
    }

    @Test func refusedDataIsNotASynchronizationError() {
        var session = D.ready()
        let actions = session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nDATA\r\nNOOP\r\n"))
        #expect(actions == [D.send("250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n250 2.0.0 Ok\r\n")])
    }

    @Test func committingHoldsPipelinedInputUntilCommitted() {
        var session = D.inData()
        let actions = session.receive(D.bytes("body\r\n.\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nQUIT\r\n"))
        #expect(actions == [D.content("body\r\n"), .endMessage])
        #expect(session.receive(D.bytes("NOOP\r\n")).isEmpty)
        #expect(session.timedOut().isEmpty)
        #expect(session.messageCommitted(queueID: "Q1") == [
            D.send("250 2.0.0 Ok: queued as Q1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n221 2.0.0 Bye\r\n"), .close,
        ])
    }

    /// A second transaction pipelined behind the first message, up to its DATA (found by
    /// the session fuzzer, whose driver had this wrong): the commit's answer runs the held
    /// commands at once, so the event that finishes the first message begins the next.
    @Test func pipelinedSecondMessageBeginsInTheEventThatFinishesTheFirst() {
        var session = D.inData()
        let first = session.receive(D.bytes("hi\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n"))
        #expect(first == [D.content("hi\r\n"), .endMessage])
        #expect(session.state == .committing)

        let next = session.messageCommitted(queueID: "Q1")
        guard next.count == 3, case .beginMessage(let envelope) = next[0],
              case .messageContent(let received) = next[1] else {
            Issue.record("expected begin, the Received header, send; got \(next)")
            return
        }
        #expect(envelope.recipients.map(\.mailbox) == ["x@y.example"])
        #expect(received.starts(with: Array("Received: ".utf8)))
        #expect(D.replies(next) == "250 2.0.0 Ok: queued as Q1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        #expect(session.receive(D.bytes("..two\r\n.\r\nQUIT\r\n")) == [D.content(".two\r\n"), .endMessage])
        #expect(session.messageCommitted(queueID: "Q2") == [D.send("250 2.0.0 Ok: queued as Q2\r\n221 2.0.0 Bye\r\n"), .close])
    }

    @Test func messageFailedRepliesInOrderAndIsNotAClientError() {
        var session = D.inData()
        _ = session.receive(D.bytes("body\r\n.\r\nMAIL FROM:<a@x.example>\r\n"))
        session.errorCount = 9   // one more client error would close
        #expect(session.messageFailed(reply: SMTPReply(452, "4.3.1", "Error: insufficient system storage"))
            == [D.send("452 4.3.1 Error: insufficient system storage\r\n250 2.1.0 Ok\r\n")])
        #expect(session.state == .mail)
    }

    @Test func heldInputAtTheLimitIsRunAfterTheCommit() {
        var session = D.inData()
        _ = session.receive(D.bytes("body\r\n.\r\n"))
        // This test is about the held-input limit, filled with NOOPs: keep the junk-command
        // limit (tested in SMTPInboundJunkCommandTests) out of the way.
        session.junkCount = -1_000_000
        let limit = session.heldInputLimit
        let count = limit / 6 - 2   // leaves 12-17 octets for the last line
        let last = "NOOP " + String(repeating: "x", count: limit - count * 6 - 7) + "\r\n"
        let held = D.bytes(String(repeating: "NOOP\r\n", count: count) + last)
        #expect(held.count == limit)
        #expect(session.receive(held).isEmpty)
        #expect(session.messageCommitted(queueID: "Q") == [
            D.send("250 2.0.0 Ok: queued as Q\r\n" + String(repeating: "250 2.0.0 Ok\r\n", count: count + 1)),
        ])
    }

    @Test func heldInputOverLimitClosesAfterTheCommitReply() {
        var session = D.inData()
        _ = session.receive(D.bytes("body\r\n.\r\n"))
        let flood = [UInt8](repeating: UInt8(ascii: "A"), count: session.heldInputLimit + 1)
        #expect(session.receive(flood).isEmpty)
        #expect(session.framer.bufferedCount == 0)
        #expect(session.messageCommitted(queueID: "Q") == [
            D.send("250 2.0.0 Ok: queued as Q\r\n421 4.7.0 relay.test Error: too much pipelined input\r\n"), .close,
        ])
    }

    @Test func sequenceErrors() {
        var session = D.session()
        _ = session.start()
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n")))
            == String(repeating: "503 5.5.1 Error: send HELO/EHLO first\r\n", count: 3))
        _ = session.receive(D.bytes("EHLO app.local\r\n"))
        #expect(D.replies(session.receive(D.bytes("RCPT TO:<b@x.example>\r\nDATA\r\n")))
            == "503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n")
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nDATA\r\nMAIL FROM:<a@x.example>\r\n")))
            == "250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n503 5.5.1 Error: nested MAIL command\r\n")
    }

    @Test func rsetAndEhloResetTheTransaction() {
        var session = D.ready()
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nRSET\r\nDATA\r\n")))
            == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n")
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nEHLO again\r\nRCPT TO:<b@x.example>\r\n")))
            == "250 2.1.0 Ok\r\n" + D.ehloReply + "503 5.5.1 Error: need MAIL command\r\n")
    }

    @Test func simpleVerbs() {
        var session = D.ready()
        let actions = session.receive(D.bytes("NOOP\r\nHELP\r\nVRFY root\r\nRSET\r\nSTARTTLS\r\nAUTH PLAIN x\r\nBDAT 1\r\nXYZZY\r\nNOOP \u{1}\r\n"))
        #expect(D.replies(actions) == "250 2.0.0 Ok\r\n"
            + "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY\r\n"
            + "252 2.0.0 Cannot VRFY user; send mail and delivery will be attempted\r\n"
            + "250 2.0.0 Ok\r\n"
            + "502 5.5.1 Error: command not implemented\r\n"
            + "502 5.5.1 Error: command not implemented\r\n"
            + "502 5.5.1 Error: command not implemented\r\n"
            + "500 5.5.2 Error: command not recognized\r\n"
            + "501 5.5.2 Syntax error: control characters in command\r\n")
    }

    @Test func sizeParameterAtAndOverTheLimit() {
        var session = D.ready(maxMessageSize: 1000)
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example> SIZE=1001\r\n")))
            == "552 5.3.4 Error: message size exceeds fixed limit\r\n")
        #expect(session.state == .ready)
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example> SIZE=1000\r\n"))) == "250 2.1.0 Ok\r\n")
        #expect(session.state == .mail)
    }

    /// The spool's free-space check answers at MAIL (with the declared size) and again at
    /// DATA, so a client hears 452 before it sends the content.
    @Test func storageShortageIsRefusedAtMailAndAtData() {
        let free = ManagedFreeSpace(bytes: 500)
        var session = InboundSession(configuration: .init(
            hostname: "relay.test", maxMessageSize: 1000, clientAddress: "127.0.0.1",
            storageCheck: { size in size > free.bytes ? SMTPReply(452, "4.3.1", "Insufficient system storage") : nil }))
        _ = session.start()
        _ = session.receive(D.bytes("EHLO app.local\r\n"))
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example> SIZE=600\r\n")))
            == "452 4.3.1 Insufficient system storage\r\n")
        #expect(session.state == .ready)
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example> SIZE=400\r\nRCPT TO:<b@x.example>\r\n")))
            == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        free.bytes = 100  // the disk fills between MAIL and DATA
        let actions = session.receive(D.bytes("DATA\r\n"))
        #expect(D.replies(actions) == "452 4.3.1 Insufficient system storage\r\n")
        #expect(!actions.contains { if case .beginMessage = $0 { true } else { false } })
        #expect(session.state == .ready)
        #expect(session.errorCount == 0)
    }

    @Test func recipientsAtAndOverTheLimit() {
        var session = D.ready(maxRecipients: 3)
        let actions = session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<1@x.example>\r\nRCPT TO:<2@x.example>\r\n"
            + "RCPT TO:<3@x.example>\r\nRCPT TO:<4@x.example>\r\nDATA\r\n"))
        #expect(D.replies(actions) == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
            + "452 4.5.3 Error: too many recipients\r\n" + D.go)
        guard case .beginMessage(let envelope) = actions.first else {
            Issue.record("no beginMessage")
            return
        }
        #expect(envelope.recipients.map(\.mailbox) == ["1@x.example", "2@x.example", "3@x.example"])
        #expect(session.errorCount == 0)
    }

    @Test func smtputf8Transaction() {
        var session = D.ready()
        #expect(D.replies(session.receive(D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<δ@x.example>\r\nRSET\r\n")))
            == "250 2.1.0 Ok\r\n553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n250 2.0.0 Ok\r\n")
        let actions = session.receive(D.bytes("MAIL FROM:<jürgen@x.example> SMTPUTF8\r\nRCPT TO:<δ@x.example>\r\nDATA\r\n"))
        #expect(D.replies(actions) == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + D.go)
        #expect(actions.contains(D.content(D.received(for: "δ@x.example", with: "UTF8SMTP"))))
        guard case .beginMessage(let envelope) = actions.first else {
            Issue.record("no beginMessage")
            return
        }
        #expect(envelope.smtputf8 && envelope.withProtocol == .utf8smtp)
    }

    /// The deadlines themselves, at and past the limit: `InboundSessionDeadlineTests`.
    @Test func timeouts() {
        var idle = D.ready()
        #expect(idle.timedOut().isEmpty, "a timer that fires early changes nothing")
        #expect(idle.state == .ready)
    }

    @Test func errorLimitClosesTheSession() {
        var session = D.ready(maxErrors: 3)
        #expect(session.receive(D.bytes("FOO\r\nBAR\r\n")) == [D.send(String(repeating: "500 5.5.2 Error: command not recognized\r\n", count: 2))])
        #expect(session.state == .ready)
        #expect(session.receive(D.bytes("BAZ\r\nNOOP\r\n")) == [
            D.send("500 5.5.2 Error: command not recognized\r\n421 4.7.0 relay.test Error: too many errors\r\n"), .close,
        ])
        #expect(session.receive(D.bytes("NOOP\r\n")).isEmpty)
    }

    @Test func observerSeesEveryReplyAndTransition() {
        final class Log: @unchecked Sendable {
            private let lock = NSLock()
            private var items: [InboundSession.Observation] = []
            func add(_ item: InboundSession.Observation) { lock.withLock { items.append(item) } }
            var all: [InboundSession.Observation] { lock.withLock { items } }
        }
        let log = Log()
        var session = InboundSession(configuration: .init(
            hostname: "relay.test", clientAddress: "127.0.0.1", clock: { 0 }, observer: { log.add($0) }))
        _ = session.start()
        _ = session.receive(D.bytes("HELO a\r\nRCPT TO:<b@x.example>\r\n"))
        #expect(log.all == [
            .reply(SMTPReply(220, nil, "relay.test ESMTP smarthost")), .transition(from: .connected, to: .greeting),
            .transition(from: .greeting, to: .ready), .reply(SMTPReply(250, nil, "relay.test")),
            .reply(SMTPReply(503, "5.5.1", "Error: need MAIL command")),
            .refusal(InboundRefusal(command: "RCPT", reply: SMTPReply(503, "5.5.1", "Error: need MAIL command"),
                                    recipient: MailPath(localPart: "b", domain: "x.example"), helo: "a")),
        ])
    }

    @Test func clientClosing() {
        var data = D.inData()
        #expect(data.clientClosed() == [.abortMessage, .close])
        var committing = D.inData()
        _ = committing.receive(D.bytes(".\r\n"))
        #expect(committing.clientClosed().isEmpty)
        #expect(committing.messageCommitted(queueID: "Q") == [.close])
    }
}

@Suite struct SMTPInboundSmugglingAndLimitsTests {
    fileprivate static let dataVariants = ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\n", "\r", "\u{0}"].map(Escaped.init)

    /// A smuggled second message in DATA: one 550 at the real end, the message
    /// aborted, no second message, whatever the chunking.
    @Test(arguments: dataVariants)
    fileprivate func smuggledMessageInDataAtEverySplitPoint(variant: Escaped) {
        let script = D.bytes("Subject: a\r\n\r\nfirst" + variant.text + "MAIL FROM:<evil@x.example>\r\nRCPT TO:<v@x.example>\r\n"
            + "DATA\r\nsecond\r\n.\r\nRCPT TO:<w@x.example>\r\n")
        for cut in 0...script.count {
            var session = D.inData(bareLineFeed: .reject)
            let actions = session.receive(script[..<cut]) + session.receive(script[cut...])
            #expect(D.replies(actions) == "550 5.5.2 Error: bare CR, bare LF or NUL in message content\r\n"
                + "503 5.5.1 Error: need MAIL command\r\n", "cut \(cut)")
            #expect(D.count(actions, .abortMessage) == 1)
            #expect(D.count(actions, .endMessage) == 0)
            #expect(!actions.contains { if case .beginMessage = $0 { true } else { false } })
            #expect(session.state == .ready)
        }
    }

    /// Bare LF / CR / NUL in a command line: one 550, never executed, and the
    /// transaction is gone.
    @Test(arguments: ["RCPT TO:<c@x.example>\n", "RCPT TO:<c@x.example>\rX\r\n", "RCPT TO:<c@\u{0}x.example>\r\n", "\n"].map(Escaped.init))
    fileprivate func bareLineEndingInCommandAtEverySplitPoint(badLine: Escaped) {
        let script = D.bytes("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\n" + badLine.text + "DATA\r\n")
        for cut in 0...script.count {
            var session = D.ready(bareLineFeed: .reject)
            let actions = session.receive(script[..<cut]) + session.receive(script[cut...])
            #expect(D.replies(actions) == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.5.2 Error: bare CR, bare LF or NUL in command\r\n"
                + "503 5.5.1 Error: need MAIL command\r\n", "cut \(cut)")
        }
    }

    @Test func commandLinesOf511And512OctetsRun() {
        for total in [511, 512] {
            var session = D.ready()
            let line = "NOOP " + String(repeating: "x", count: total - 7) + "\r\n"
            #expect(line.utf8.count == total)
            #expect(session.receive(D.bytes(line)) == [D.send("250 2.0.0 Ok\r\n")])
        }
    }

    @Test func commandLineOf513OctetsIsRefusedOnceAndNeverRun() {
        let line = "NOOP " + String(repeating: "x", count: 506) + "\r\n"
        #expect(line.utf8.count == 513)
        var session = D.ready()
        #expect(session.receive(D.bytes(line + "RSET\r\n")) == [D.send("500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n")])
        // Cut inside the overlong line: the tail is discarded silently.
        var split = D.ready()
        let bytes = D.bytes(line)
        #expect(split.receive(bytes[..<511]) == [D.send("500 5.5.2 Line too long\r\n")])
        #expect(split.receive(bytes[511...]).isEmpty)
        #expect(split.receive(D.bytes("NOOP\r\n")) == [D.send("250 2.0.0 Ok\r\n")])
    }

    @Test func floodWithoutCRLFGetsOneReplyAndBoundedBuffer() {
        var session = D.ready()
        var actions: [InboundAction] = []
        for _ in 0..<256 {
            actions += session.receive([UInt8](repeating: UInt8(ascii: "A"), count: 4096))
            #expect(session.framer.bufferedCount <= LineFramer.maxCommandLineLength)
        }
        #expect(D.replies(actions) == "500 5.5.2 Line too long\r\n")
    }

    @Test func textLineOf1000OctetsIsAcceptedAnd1001Refused() {
        var ok = D.inData()
        let line1000 = String(repeating: "x", count: 998) + "\r\n"
        #expect(ok.receive(D.bytes(line1000 + ".\r\n")) == [D.content(line1000), .endMessage])

        var long = D.inData()
        let line1001 = String(repeating: "x", count: 999) + "\r\n"
        let actions = long.receive(D.bytes(line1001)) + long.receive(D.bytes(".\r\nNOOP\r\n"))
        #expect(D.replies(actions) == "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n")
        #expect(D.count(actions, .abortMessage) == 1)
        #expect(D.count(actions, .endMessage) == 0)
    }

    @Test func contentAtAndOverMaxMessageSize() {
        // The Received: header is ours and does not count.
        var atMax = D.inData(maxMessageSize: 20)
        let twenty = "123456789012345678\r\n"
        #expect(atMax.receive(D.bytes(twenty + ".\r\n")) == [D.content(twenty), .endMessage])

        var overMax = D.inData(maxMessageSize: 20)
        let actions = overMax.receive(D.bytes("1234567890123456789\r\n.\r\n"))
        #expect(actions == [.abortMessage, D.send("552 5.3.4 Error: message file too big\r\n")])
        #expect(overMax.state == .ready)
    }

    @Test func smugglingCountsTowardsTheErrorLimit() {
        var session = D.ready(maxErrors: 2, bareLineFeed: .reject)
        #expect(session.receive(D.bytes("NOOP\nNOOP\n")) == [
            D.send("550 5.5.2 Error: bare CR, bare LF or NUL in command\r\n550 5.5.2 Error: bare CR, bare LF or NUL in command\r\n"
                + "421 4.7.0 relay.test Error: too many errors\r\n"), .close,
        ])
    }
}

/// Bare LF normalized (Postfix 3.9, the default): commands and content end lines at a bare
/// LF, content is stored with CRLF, and only `CRLF.CRLF` ends DATA.
@Suite struct SMTPInboundBareLineFeedTests {
    /// The smuggling payloads again: with bare LF normalized, a payload with no bare CR and no
    /// NUL is one message whose content holds the fake end and the "second message"; the
    /// pipelined RCPT after the real end is a command again (503: no transaction).
    @Test(arguments: SMTPInboundSmugglingAndLimitsTests.dataVariants)
    fileprivate func smuggledMessageIsContentOfOneMessage(variant: Escaped) {
        let tail = "MAIL FROM:<evil@x.example>\r\nRCPT TO:<v@x.example>\r\nDATA\r\nsecond\r\n"
        let script = D.bytes("Subject: a\r\n\r\nfirst" + variant.text + tail + ".\r\nRCPT TO:<w@x.example>\r\n")
        let clean = !D.bytes(variant.text).contains(0) && !D.bytes(variant.text).enumerated().contains { index, byte in
            byte == 13 && (index + 1 == variant.text.utf8.count || D.bytes(variant.text)[index + 1] != 10)
        }
        for cut in 0...script.count {
            var session = D.inData()
            var actions = session.receive(script[..<cut]) + session.receive(script[cut...])
            if clean {
                #expect(D.count(actions, .endMessage) == 1, "cut \(cut)")
                #expect(D.count(actions, .abortMessage) == 0)
                let content: [UInt8] = actions.flatMap { action -> [UInt8] in
                    if case .messageContent(let bytes) = action { bytes } else { [] }
                }
                let text = String(decoding: content, as: UTF8.self)
                #expect(text.hasSuffix("first\r\n" + (variant.text.contains(".") ? ".\r\n" : "") + tail))
                actions += session.messageCommitted(queueID: "Q")
                #expect(D.replies(actions) == "250 2.0.0 Ok: queued as Q\r\n503 5.5.1 Error: need MAIL command\r\n")
            } else {
                #expect(D.replies(actions) == "550 5.5.2 Error: bare CR, bare LF or NUL in message content\r\n"
                    + "503 5.5.1 Error: need MAIL command\r\n", "cut \(cut)")
                #expect(D.count(actions, .endMessage) == 0)
            }
            #expect(!actions.contains { if case .beginMessage = $0 { true } else { false } })
        }
    }

    @Test func commandsEndingInBareLineFeedRun() {
        var session = D.session()
        _ = session.start()
        let actions = session.receive(D.bytes("EHLO app.local\nMAIL FROM:<a@x.example>\nRCPT TO:<b@x.example>\nDATA\n"))
        #expect(D.replies(actions) == D.ehloReply + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + D.go)
        #expect(session.state == .data)
        let body = session.receive(D.bytes("Subject: lf\n\nhello\n.\nstill content\n.\r\n"))
        #expect(body == [D.content("Subject: lf\r\n\r\nhello\r\n.\r\nstill content\r\n.\r\n")])
        #expect(session.state == .data, "only CRLF.CRLF ends DATA")
        #expect(session.receive(D.bytes("tail\r\n.\r\n")) == [D.content("tail\r\n"), .endMessage])
    }

    @Test func bareCRInCommandIsStillRefused() {
        var session = D.ready()
        #expect(session.receive(D.bytes("NO\rOP\nNOOP\n")) == [
            D.send("550 5.5.2 Error: bare CR, bare LF or NUL in command\r\n250 2.0.0 Ok\r\n"),
        ])
    }
}

/// Free space that a test changes while the session holds the check closure.
final class ManagedFreeSpace: @unchecked Sendable {
    var bytes: Int
    init(bytes: Int) { self.bytes = bytes }
}
