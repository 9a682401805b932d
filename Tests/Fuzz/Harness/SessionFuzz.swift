/// A whole `InboundSession` fed arbitrary client bytes in random chunks, driven the
/// way `InboundConnection` drives it: commits succeed or fail at random moments,
/// input may arrive while committing, the timer may fire, the client may hang up.
///
/// Invariants (the driver contract of `InboundSession`):
/// - actions come as message actions, then at most one `.send`, then `.close` last;
/// - `.beginMessage` only with no message open, and with a 354 in the same event;
///   `.messageContent`, `.endMessage`, `.abortMessage` only with one open; so at most
///   one `.endMessage` per `.beginMessage`, and after it the session is committing;
/// - every `.send` is whole, well-formed reply lines that our own reply parser reads;
/// - a committed message's content after the `Received:` header is clean CRLF text;
/// - the envelope has 1…maxRecipients recipients;
/// - after `.close` the session never acts again;
/// - every 4xx/5xx reply is followed by exactly one refusal report with that reply and a
///   command name, and no other reply is reported as a refusal (the refusal log lines).
enum SessionFuzz {
    /// What the observer heard, checked as it arrives.
    final class Refusals: @unchecked Sendable {
        var pending: SMTPReply?
        func observe(_ observation: InboundSession.Observation) {
            switch observation {
            case .reply(let reply):
                check(pending == nil, "a 4xx/5xx reply was not reported as a refusal: \(pending!)")
                pending = reply.code >= 400 ? reply : nil
            case .refusal(let refusal):
                check(pending == refusal.reply, "refusal \(refusal.reply) does not follow its reply")
                check(!refusal.command.isEmpty, "a refusal without a command")
                pending = nil
            case .transition:
                break
            }
        }
    }

    static func run(_ input: inout FuzzInput) {
        let refusals = Refusals()
        // Time moves with the input: some chunks come late, some timers fire early.
        let clock = FuzzClock()
        let configuration = InboundSession.Configuration(
            hostname: "relay.fuzz",
            maxMessageSize: input.control & 1 == 0 ? 2000 : 35 * 1024 * 1024,
            maxRecipients: [1, 3, 100, 1000][Int(input.control >> 1 & 3)],
            clientAddress: "127.0.0.1",
            clientAllowed: input.control & 0x80 == 0 || input.control & 0x40 == 0,
            maxErrors: [10, 3, 1000, 1][Int(input.control >> 3 & 3)],
            clock: { 1_763_847_621 },
            observer: { refusals.observe($0) },
            bareLineFeed: input.control & 0x20 == 0 ? .normalize : .reject,
            commandTimeoutMilliseconds: 1_000, dataTimeoutMilliseconds: 2_000, now: { clock.now })
        var driver = Driver(session: InboundSession(configuration: configuration))
        driver.apply(driver.session.start())
        for chunk in input.chunks() {
            if driver.session.state == .committing {
                switch input.below(4) {
                case 0: driver.finishCommit(succeeded: true)
                case 1: driver.finishCommit(succeeded: false)
                default: break   // a read that was already in flight while committing
                }
            }
            clock.advance(Int64(input.below(400)))
            if input.below(200) == 0 { driver.apply(driver.session.timedOut()) }
            driver.apply(driver.session.receive(chunk))
        }
        if driver.session.state == .committing {
            driver.finishCommit(succeeded: true)
        }
        if input.below(2) == 0 {
            clock.advance(Int64(input.below(3_000)))
            driver.apply(driver.session.timedOut())
        }
        driver.apply(driver.session.clientClosed())
        check(driver.session.state == .closed, "session not closed after clientClosed")
        check(refusals.pending == nil, "the last 4xx/5xx reply was not reported as a refusal")
    }

    struct Driver {
        var session: InboundSession
        var messageOpen = false
        var content: [UInt8] = []
        var recipients = 0
        var awaitingCommit = false
        var closed = false
        var committed = 0
        var replies = UpstreamReplyParser(maxLineLength: 4096, maxLines: 100)

        /// The spool's answer for the message being committed. The same event may already
        /// begin the next message: pipelined commands held during the commit run now.
        mutating func finishCommit(succeeded: Bool) {
            check(awaitingCommit, "committing without an endMessage")
            awaitingCommit = false
            committed += 1
            apply(succeeded ? session.messageCommitted(queueID: "Q\(committed)")
                            : session.messageFailed(reply: SMTPReply(452, "4.3.1", "Insufficient system storage")))
        }

        mutating func apply(_ actions: [InboundAction]) {
            if closed {
                check(actions.isEmpty, "actions after close: \(actions)")
                return
            }
            var phase = 0   // 0 message actions, 1 after send, 2 after close
            var began = false
            var sent: [UInt8] = []
            for action in actions {
                switch action {
                case .beginMessage(let envelope):
                    check(phase == 0 && !messageOpen && !awaitingCommit, "beginMessage out of order")
                    check((1...session.configuration.maxRecipients).contains(envelope.recipients.count),
                          "envelope with \(envelope.recipients.count) recipients")
                    messageOpen = true
                    began = true
                    content = []
                    recipients = envelope.recipients.count
                case .messageContent(let bytes):
                    check(phase == 0 && messageOpen, "content with no message open")
                    content += bytes
                case .endMessage:
                    check(phase == 0 && messageOpen, "endMessage with no message open")
                    messageOpen = false
                    awaitingCommit = true
                    checkCommittedContent()
                case .abortMessage:
                    check(phase == 0 && messageOpen, "abortMessage with no message open")
                    messageOpen = false
                case .send(let bytes):
                    check(phase == 0, "two sends in one event, or send after close")
                    phase = 1
                    sent = bytes
                case .close:
                    check(phase < 2, "two closes")
                    phase = 2
                    closed = true
                }
            }
            if !sent.isEmpty { checkReplies(sent) }
            if began {
                check(sent.contains(subsequence: Array("354 ".utf8)), "beginMessage without 354")
            }
            if awaitingCommit { check(session.state == .committing, "endMessage but not committing") }
            check(closed == (session.state == .closed), "close action and closed state disagree")
            if closed { check(!messageOpen, "closed with a message still open") }
        }

        mutating func checkReplies(_ bytes: [UInt8]) {
            check(isWellFormedReplyStream(bytes), "malformed reply bytes: \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            replies.feed(bytes)
            do {
                var count = 0
                while let reply = try replies.nextReply() {
                    check((200...559).contains(reply.code), "reply code \(reply.code)")
                    count += 1
                }
                check(count > 0 && !replies.hasBufferedBytes, "partial reply sent")
            } catch {
                check(false, "our reply parser refuses what the session sent: \(error)")
            }
        }

        /// The content after our `Received:` header is what the client sent, unstuffed.
        func checkCommittedContent() {
            // The fixed clock makes the header end with this date line.
            guard let headerEnd = content.firstRange(of: Array("21:40:21 +0000\r\n".utf8)) else {
                check(false, "no Received header at the start of the message")
                return
            }
            let body = Array(content[headerEnd.upperBound...])
            check(body.isEmpty || body.suffix(2) == [13, 10], "committed body does not end in CRLF")
            check(!body.contains(0), "NUL in committed body")
            for (index, byte) in body.enumerated() where byte == 13 || byte == 10 {
                let paired = byte == 13 ? index + 1 < body.count && body[index + 1] == 10
                                        : index > 0 && body[index - 1] == 13
                check(paired, "bare CR or LF in committed body")
            }
        }
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence needle: [UInt8]) -> Bool { firstRange(of: needle) != nil }
}

/// The session's monotonic clock, moved by the fuzz input.
final class FuzzClock: @unchecked Sendable {
    private(set) var now: Int64 = 0
    func advance(_ milliseconds: Int64) { now += milliseconds }
}
