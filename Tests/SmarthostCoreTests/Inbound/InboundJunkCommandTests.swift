import Testing
@testable import SmarthostCore

@Suite struct SMTPInboundJunkCommandTests {
    static func replies(_ actions: [InboundAction]) -> [String] {
        actions.flatMap { action -> [String] in
            guard case .send(let bytes) = action else { return [] }
            return String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").map(String.init)
        }
    }

    @Test func junkCommandsPastTheLimitCountAsErrorsUntil421() {
        var session = InboundSession(configuration: .init(hostname: "relay.test", clientAddress: "127.0.0.1"))
        _ = session.start()
        _ = session.receive(Array("EHLO client.test\r\n".utf8))
        // At the limit: every NOOP is answered and nothing else happens.
        let atLimit = Self.replies(session.receive(Array(String(repeating: "NOOP\r\n", count: 99).utf8)))
        #expect(atLimit.count == 99 && atLimit.allSatisfy { $0 == "250 2.0.0 Ok" })
        // Past it: 10 more (the default error limit) end the session.
        let past = Self.replies(session.receive(Array(String(repeating: "NOOP\r\n", count: 20).utf8)))
        #expect(past.last?.hasPrefix("421 4.7.0") == true)
        #expect(past.filter { $0.hasPrefix("250") }.count == 11)
        #expect(session.state == .closed)
    }

    @Test func aNormalSessionWithAFewJunkCommandsIsUnaffected() {
        var session = InboundSession(configuration: .init(hostname: "relay.test", clientAddress: "127.0.0.1"))
        _ = session.start()
        let out = Self.replies(session.receive(Array("EHLO c\r\nNOOP\r\nRSET\r\nHELP\r\nVRFY x\r\nMAIL FROM:<a@b.example>\r\n".utf8)))
        #expect(out.last == "250 2.1.0 Ok")
    }

    /// A client that keeps sending RCPTs past max_recipients without heeding 452 gets
    /// 1 000 of them free (Postfix's overshoot limit), then each counts as an error.
    @Test func recipientsPastTheOvershootLimitCountAsErrorsUntil421() {
        var session = InboundSession(configuration: .init(hostname: "relay.test", maxRecipients: 2,
                                                          clientAddress: "127.0.0.1"))
        _ = session.start()
        _ = session.receive(Array("EHLO client.test\r\nMAIL FROM:<a@b.example>\r\n".utf8))
        let atLimit = Self.replies(session.receive(Array(String(repeating: "RCPT TO:<r@x.example>\r\n", count: 1002).utf8)))
        #expect(atLimit.filter { $0 == "250 2.1.5 Ok" }.count == 2)
        #expect(atLimit.filter { $0.hasPrefix("452 4.5.3") }.count == 1000)
        #expect(session.errorCount == 0)
        #expect(session.state == .rcpt)
        let past = Self.replies(session.receive(Array(String(repeating: "RCPT TO:<r@x.example>\r\n", count: 20).utf8)))
        #expect(past.filter { $0.hasPrefix("452 4.5.3") }.count == 10)
        #expect(past.last?.hasPrefix("421 4.7.0") == true)
        #expect(session.state == .closed)
    }
}
