import Foundation
import Testing
@testable import SmarthostCore

/// Issue 14, defect 8: the command and DATA timeouts are deadlines, not inactivity timers. A
/// client that drips a byte at a time gets no more time than one that sends nothing.
@Suite struct InboundSessionDeadlineTests {
    /// Monotonic milliseconds the test moves by hand.
    final class ManualClock: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int64 = 1_000_000
        var now: Int64 { lock.withLock { value } }
        func advance(_ milliseconds: Int64) { lock.withLock { value += milliseconds } }
    }

    static let command: Int64 = 30_000
    static let data: Int64 = 60_000
    static let timeout = "421 4.4.2 relay.test Error: timeout exceeded\r\n"

    static func session(_ clock: ManualClock) -> InboundSession {
        var session = InboundSession(configuration: .init(
            hostname: "relay.test", clientAddress: "127.0.0.1", clock: { 1_763_847_621 },
            commandTimeoutMilliseconds: command, dataTimeoutMilliseconds: data, now: { clock.now }))
        _ = session.start()
        return session
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func replies(_ actions: [InboundAction]) -> String {
        actions.map { action in
            if case .send(let bytes) = action { String(decoding: bytes, as: UTF8.self) } else { "" }
        }.joined()
    }

    /// Past EHLO, MAIL and RCPT, 354 sent at the clock's current time.
    static func inData(_ clock: ManualClock) -> InboundSession {
        var session = session(clock)
        _ = session.receive(bytes("EHLO app.local\r\nMAIL FROM:<a@acme.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n"))
        precondition(session.state == .data)
        return session
    }

    @Test func theGreetingStartsTheCommandDeadline() {
        let clock = ManualClock()
        var session = Self.session(clock)
        #expect(session.pendingDeadline == clock.now + Self.command)
        clock.advance(Self.command - 1)
        #expect(session.timedOut().isEmpty, "one millisecond before the deadline")
        clock.advance(1)
        #expect(session.timedOut() == [.send(Self.bytes(Self.timeout)), .close], "at the deadline")
        #expect(session.state == .closed)
        #expect(session.pendingDeadline == nil)
    }

    /// The reported case: a byte every 15 s kept the session open for ever.
    @Test func bytesThatCompleteNoCommandDoNotMoveTheDeadline() {
        let clock = ManualClock()
        var session = Self.session(clock)
        let deadline = session.pendingDeadline
        for byte in "EHLO app.loc".utf8 {
            clock.advance(2_000)
            #expect(session.receive([byte]).isEmpty)
        }
        #expect(session.pendingDeadline == deadline)
        clock.advance(Self.command - 12 * 2_000 - 1)
        #expect(session.receive(Self.bytes("a")).isEmpty)
        #expect(session.timedOut().isEmpty)
        clock.advance(1)
        #expect(Self.replies(session.timedOut()) == Self.timeout)
    }

    @Test func aCompleteCommandStartsTheNextDeadline() {
        let clock = ManualClock()
        var session = Self.session(clock)
        clock.advance(Self.command - 1)
        #expect(Self.replies(session.receive(Self.bytes("EHLO app.local\r\nNO"))).hasPrefix("250-relay.test"))
        #expect(session.pendingDeadline == clock.now + Self.command, "the partial NO counts against the new one")
        clock.advance(Self.command - 1)
        #expect(session.receive(Self.bytes("OP\r\n")) == [.send(Self.bytes("250 2.0.0 Ok\r\n"))])
        #expect(session.state == .ready)
    }

    /// A line completed after the deadline (the timer has not run yet: the loop was busy) is
    /// not executed.
    @Test func aCommandCompletedPastTheDeadlineIsNotRun() {
        let clock = ManualClock()
        var session = Self.session(clock)
        _ = session.receive(Self.bytes("EHLO app.local\r\nMAIL FROM:<a@acme.example>"))
        clock.advance(Self.command)
        #expect(session.receive(Self.bytes("\r\n")) == [.send(Self.bytes(Self.timeout)), .close])
    }

    @Test func theMessageContentHasItsOwnDeadlineFrom354() {
        let clock = ManualClock()
        var session = Self.inData(clock)
        #expect(session.pendingDeadline == clock.now + Self.data)
        for _ in 0..<59 {
            clock.advance(1_000)
            _ = session.receive(Self.bytes("x"))
        }
        clock.advance(999)
        #expect(session.timedOut().isEmpty, "one millisecond before the deadline")
        clock.advance(1)
        #expect(session.timedOut() == [.abortMessage, .send(Self.bytes(Self.timeout)), .close])
    }

    @Test func contentEndingAtTheLastMillisecondIsCommitted() {
        let clock = ManualClock()
        var session = Self.inData(clock)
        clock.advance(Self.data - 1)
        #expect(session.receive(Self.bytes("Subject: x\r\n\r\nhi\r\n.\r\n")).contains(.endMessage))
        #expect(session.pendingDeadline == nil, "no deadline while the spool commits")
        clock.advance(Self.data * 10)
        #expect(session.timedOut().isEmpty)
        #expect(Self.replies(session.messageCommitted(queueID: "Q1")) == "250 2.0.0 Ok: queued as Q1\r\n")
        #expect(session.pendingDeadline == clock.now + Self.command, "the next command's time starts at 250")
    }

    @Test func contentArrivingPastTheDeadlineIsNotSpooled() {
        let clock = ManualClock()
        var session = Self.inData(clock)
        clock.advance(Self.data)
        let actions = session.receive(Self.bytes("Subject: x\r\n\r\nhi\r\n.\r\n"))
        #expect(actions == [.abortMessage, .send(Self.bytes(Self.timeout)), .close])
    }

    @Test func aFailedMessageStartsTheCommandDeadlineAgain() {
        let clock = ManualClock()
        var session = Self.inData(clock)
        clock.advance(10)
        _ = session.receive(Self.bytes("bad\rline\r\n.\r\n"))
        #expect(session.state == .ready)
        #expect(session.pendingDeadline == clock.now + Self.command)
    }

    @Test func theTooManyFromYourAddressReply() {
        #expect(InboundSession.tooManyConnectionsFromClientReply(hostname: "relay.test").description
            == "421 4.7.0 relay.test Error: too many connections from your address")
    }
}
