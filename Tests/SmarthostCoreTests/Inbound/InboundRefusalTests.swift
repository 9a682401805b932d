import Foundation
import Testing
@testable import SmarthostCore

/// Every 4xx/5xx the session sends is reported once to the observer, with the command it
/// answered and the addresses involved: the driver turns each into one log line.
@Suite struct SMTPInboundRefusalTests {
    final class Refusals: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [InboundRefusal] = []
        func add(_ observation: InboundSession.Observation) {
            if case .refusal(let refusal) = observation { lock.withLock { items.append(refusal) } }
        }
        var all: [InboundRefusal] { lock.withLock { items } }
    }

    static func session(_ refusals: Refusals, allowed: Bool = true, maxErrors: Int = 10,
                        bareLineFeed: BareLineFeedPolicy = .normalize,
                        now: @escaping @Sendable () -> Int64 = { 0 }) -> InboundSession {
        InboundSession(configuration: .init(
            hostname: "relay.test", maxMessageSize: 100, maxRecipients: 1, clientAddress: "192.0.2.7",
            clientAllowed: allowed, maxErrors: maxErrors, clock: { 0 }, observer: { refusals.add($0) },
            bareLineFeed: bareLineFeed, now: now))
    }

    static func path(_ text: String) -> MailPath {
        let parts = text.split(separator: "@")
        return MailPath(localPart: String(parts[0]), domain: String(parts[1]))
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func accessDeniedAtConnect() {
        let refusals = Refusals()
        var session = Self.session(refusals, allowed: false)
        _ = session.start()
        #expect(refusals.all == [InboundRefusal(
            command: "CONNECT", reply: SMTPReply(554, "5.7.1", "relay.test Error: access denied for 192.0.2.7"))])
    }

    @Test func commandRefusalsCarryTheirAddresses() {
        let refusals = Refusals()
        var session = Self.session(refusals)
        _ = session.start()
        _ = session.receive(Self.bytes("EHLO app.local\r\nMAIL FROM:<a@acme.example> SIZE=101\r\n"
            + "MAIL FROM:<a@acme.example>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:<r2@example.com>\r\nFOO\r\n"))
        #expect(refusals.all == [
            InboundRefusal(command: "MAIL", reply: SMTPReply(552, "5.3.4", "Error: message size exceeds fixed limit"),
                           sender: Self.path("a@acme.example"), helo: "app.local"),
            InboundRefusal(command: "RCPT", reply: SMTPReply(452, "4.5.3", "Error: too many recipients"),
                           sender: Self.path("a@acme.example"), recipient: Self.path("r2@example.com"), helo: "app.local"),
            InboundRefusal(command: "UNKNOWN", reply: SMTPReply(500, "5.5.2", "Error: command not recognized"),
                           sender: Self.path("a@acme.example"), helo: "app.local"),
        ])
    }

    @Test func smugglingAndSizeAtTheEndOfTheMessage() {
        for (policy, text, reply) in [
            (BareLineFeedPolicy.reject, "a\n.\nb\r\n.\r\n", DataDecoder.Failure.badLineEnding.reply),
            (.normalize, "a\r.\rb\r\n.\r\n", DataDecoder.Failure.badLineEnding.reply),
            (.normalize, String(repeating: "x", count: 200) + "\r\n.\r\n", DataDecoder.Failure.tooBig.reply),
        ] {
            let refusals = Refusals()
            var session = Self.session(refusals, bareLineFeed: policy)
            _ = session.start()
            _ = session.receive(Self.bytes("EHLO app.local\r\nMAIL FROM:<a@acme.example>\r\nRCPT TO:<r1@example.com>\r\nDATA\r\n"))
            _ = session.receive(Self.bytes(text))
            #expect(refusals.all == [InboundRefusal(command: "END-OF-MESSAGE", reply: reply, sender: Self.path("a@acme.example"),
                                                    recipient: Self.path("r1@example.com"), helo: "app.local")])
        }
    }

    @Test func spoolFailureAtTheEndOfTheMessage() {
        let refusals = Refusals()
        var session = Self.session(refusals)
        _ = session.start()
        _ = session.receive(Self.bytes("EHLO app.local\r\nMAIL FROM:<>\r\nRCPT TO:<r1@example.com>\r\nDATA\r\n"))
        _ = session.receive(Self.bytes("x\r\n.\r\n"))
        _ = session.messageFailed(reply: SMTPReply(452, "4.3.1", "Error: insufficient system storage"))
        #expect(refusals.all.map(\.command) == ["END-OF-MESSAGE"])
        #expect(refusals.all.first?.sender?.isNull == true)
        #expect(refusals.all.first?.reply.code == 452)
    }

    @Test func timeoutLineLimitBareCRAndTheErrorLimit() {
        let refusals = Refusals()
        var session = Self.session(refusals, maxErrors: 3)
        _ = session.start()
        _ = session.receive(Self.bytes("EHLO app.local\r\nNO\rOP\r\n" + String(repeating: "x", count: 600) + "\r\nDATA\r\n"))
        #expect(refusals.all.map(\.command) == ["UNKNOWN", "UNKNOWN", "DATA", "DATA"])
        #expect(refusals.all.map(\.reply.code) == [550, 500, 503, 421])
        let quiet = Refusals()
        let clock = InboundSessionDeadlineTests.ManualClock()
        var idle = Self.session(quiet, now: { clock.now })
        _ = idle.start()
        clock.advance(5 * 60_000)
        _ = idle.timedOut()
        #expect(quiet.all == [InboundRefusal(command: "TIMEOUT", reply: SMTPReply(421, "4.4.2", "relay.test Error: timeout exceeded"))])
    }

    @Test func positiveRepliesAreNotRefusals() {
        let refusals = Refusals()
        var session = Self.session(refusals)
        _ = session.start()
        _ = session.receive(Self.bytes("EHLO app.local\r\nMAIL FROM:<a@acme.example>\r\nRCPT TO:<r1@example.com>\r\nDATA\r\n"))
        _ = session.receive(Self.bytes("hi\r\n.\r\n"))
        _ = session.messageCommitted(queueID: "Q")
        _ = session.receive(Self.bytes("QUIT\r\n"))
        #expect(refusals.all.isEmpty)
    }

    /// A message refused for its org after DATA: one refusal, at the end of the message,
    /// with the org; the session is ready for the next transaction.
    @Test func tenancyRefusalCarriesTheOrg() {
        let refusals = Refusals()
        var session = Self.session(refusals)
        _ = session.start()
        _ = session.receive(Self.bytes("EHLO app.local\r\nMAIL FROM:<a@evil.example>\r\nRCPT TO:<r1@example.com>\r\nDATA\r\n"))
        let actions = session.receive(Self.bytes("X-Smarthost-Org: acme\r\n\r\nhi\r\n.\r\n"))
        #expect(actions.contains(.endMessage))
        #expect(session.state == .committing)
        let reply = SMTPReply(550, "5.7.1", "Error: client 192.0.2.7 may not send as org acme")
        let after = session.messageRefused(reply: reply, org: "acme")
        #expect(after == [.send(reply.wireBytes)])
        #expect(session.state == .ready)
        #expect(refusals.all == [InboundRefusal(command: "END-OF-MESSAGE", reply: reply, sender: Self.path("a@evil.example"),
                                                recipient: Self.path("r1@example.com"), helo: "app.local", org: "acme")])
        let line = RefusalLog.metadata(refusals.all[0], client: "192.0.2.7")
        #expect(line["org"] == "acme" && line["from"] == "<a@evil.example>" && line["client"] == "192.0.2.7")
    }
}
