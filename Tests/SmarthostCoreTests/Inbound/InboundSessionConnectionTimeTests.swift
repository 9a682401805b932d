import Foundation
import Testing
@testable import SmarthostCore

/// Issue 19, item 5: `limits.max_connection_time` bounds one connection's whole life. A NOOP
/// before each command deadline used to keep a slot for ever; now the next command after
/// the bound gets `421 4.4.2`, or the idle wait itself is cut to it. A message in DATA is
/// never cut by it.
@Suite struct InboundSessionConnectionTimeTests {
    typealias Clock = InboundSessionDeadlineTests.ManualClock

    static let life: Int64 = 10 * 60_000
    static let command: Int64 = 5 * 60_000
    static let limitReply = "421 4.4.2 relay.test Error: connection time limit exceeded, reconnect\r\n"

    static func session(_ clock: Clock, life: Int64 = Self.life) -> InboundSession {
        var session = InboundSession(configuration: .init(
            hostname: "relay.test", clientAddress: "127.0.0.1", clock: { 1_763_847_621 },
            commandTimeoutMilliseconds: command, dataTimeoutMilliseconds: 10 * 60_000,
            connectionTimeMilliseconds: life, now: { clock.now }))
        _ = session.start()
        return session
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static let replies = InboundSessionDeadlineTests.replies

    @Test func noopKeepAlivesGet421AtTheNextCommandPastTheBound() {
        let clock = Clock()
        var session = Self.session(clock)
        _ = session.receive(Self.bytes("EHLO app.local\r\n"))
        // A NOOP every 4 minutes, inside each idle_timeout: fine until the bound.
        for _ in 0..<2 {
            clock.advance(4 * 60_000)
            #expect(Self.replies(session.receive(Self.bytes("NOOP\r\n"))).hasPrefix("250 "))
        }
        clock.advance(2 * 60_000 - 1)   // 9:59.999 after the greeting
        #expect(Self.replies(session.receive(Self.bytes("RSET\r\n"))).hasPrefix("250 "), "just before the bound")
        clock.advance(1)
        let actions = session.receive(Self.bytes("NOOP\r\n"))
        #expect(actions == [.send(Self.bytes(Self.limitReply)), .close], "at the bound")
        #expect(session.state == .closed)
    }

    @Test func theIdleWaitIsCutToTheBound() {
        let clock = Clock()
        var session = Self.session(clock)
        clock.advance(4 * 60_000)
        _ = session.receive(Self.bytes("EHLO app.local\r\n"))
        clock.advance(4 * 60_000)
        _ = session.receive(Self.bytes("NOOP\r\n"))
        // idle_timeout would allow until 13:00; the connection's bound is 10:00.
        #expect(session.pendingDeadline == clock.now + 2 * 60_000)
        clock.advance(2 * 60_000 - 1)
        #expect(session.timedOut().isEmpty)
        clock.advance(1)
        #expect(session.timedOut() == [.send(Self.bytes(Self.limitReply)), .close])
    }

    /// A message started before the bound finishes (data_timeout bounds it), is answered
    /// 250, and the 421 comes at the next command.
    @Test func aMessageInDataIsNeverCutByTheBound() {
        let clock = Clock()
        var session = Self.session(clock)
        clock.advance(4 * 60_000)
        _ = session.receive(Self.bytes("EHLO app.local\r\n"))
        clock.advance(4 * 60_000)
        _ = session.receive(Self.bytes("NOOP\r\n"))
        clock.advance(2 * 60_000 - 1_000)   // one second before the bound
        _ = session.receive(Self.bytes("MAIL FROM:<a@acme.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n"))
        #expect(session.state == .data)
        clock.advance(5 * 60_000)   // past the bound, inside data_timeout
        #expect(session.timedOut().isEmpty)
        let end = session.receive(Self.bytes("Subject: slow\r\n\r\nbody\r\n.\r\n"))
        #expect(end.contains(.endMessage), "\(end)")
        #expect(session.state == .committing)
        // The reply to the message, then the pipelined QUIT... is a command past the bound.
        let committed = session.messageCommitted(queueID: "Q1")
        #expect(Self.replies(committed).hasPrefix("250 2.0.0 Ok: queued as Q1"))
        #expect(session.state == .ready)
        #expect(Self.replies(session.receive(Self.bytes("MAIL FROM:<b@acme.example>\r\n"))) == Self.limitReply)
        #expect(session.state == .closed)
    }

    @Test func zeroIsNoBound() {
        let clock = Clock()
        var session = Self.session(clock, life: 0)
        for _ in 0..<30 {
            clock.advance(4 * 60_000)
            #expect(Self.replies(session.receive(Self.bytes("NOOP\r\n"))).hasPrefix("250 "))
        }
        #expect(session.pendingDeadline == clock.now + Self.command)
    }

    @Test func theConfigurationDefaultAndItsKey() throws {
        #expect(RelayConfig.Limits().maxConnectionTimeMs == 10 * 60_000)
        #expect(RelayConfig.Limits().maxConnectionTimeMs >= RelayConfig.Limits().dataTimeoutMs,
                "a whole max-size message at the slowest allowed rate fits in one connection")
        let route = "default:\n  host: smtp.example.com\n  port: 587\n"
        #expect(try ConfigTestSupport.parse("limits:\n  max_connection_time: 90s\n" + route).limits.maxConnectionTimeMs == 90_000)
        #expect(try ConfigTestSupport.parse("limits:\n  max_connection_time: 0\n" + route).limits.maxConnectionTimeMs == 0)
        #expect(!ConfigTestSupport.issues("limits:\n  max_connection_time: soon\n" + route).isEmpty)
    }
}
