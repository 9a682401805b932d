import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// Issue 14, defect 8, over a real socket against a real relay: a client that drips one byte
/// at a time, each well inside the old inactivity timeout, still gets 421 at the deadline;
/// and the per-address connection cap at and past its limit.
@Suite(.serialized) struct InboundDeadlineEndToEndTests {
    /// Sends one byte per `interval` until a reply comes or `giveUp` seconds pass; the
    /// reply and the seconds it took.
    static func drip(_ client: RawSMTPClient, interval: useconds_t = 400_000, giveUp: Double) -> (String, Double) {
        let start = Date()
        while Date().timeIntervalSince(start) < giveUp {
            client.send("x")
            usleep(interval)
            // The socket's receive timeout is short (see below): "" means nothing yet.
            let reply = client.readReply()
            if !reply.isEmpty { return (reply, Date().timeIntervalSince(start)) }
        }
        return ("", Date().timeIntervalSince(start))
    }

    /// Polls for one reply on a socket whose receive timeout is short.
    static func reply(_ client: RawSMTPClient) -> String {
        var text = ""
        _ = eventually(timeout: 20) {
            text = client.readReply()
            return !text.isEmpty
        }
        return text
    }

    /// A client past the greeting whose reads wait 0.1 s, so the drip loop can look for the
    /// 421 between bytes.
    static func greetedDripClient(_ relay: RelayProcess) throws -> RawSMTPClient {
        let client = try RawSMTPClient(port: relay.port, timeoutSeconds: 1)
        var quick = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &quick, socklen_t(MemoryLayout<timeval>.size))
        #expect(reply(client).hasPrefix("220 "))
        return client
    }

    @Test func aDrippedMessageGets421AtTheDataDeadlineAndNothingIsSpooled() throws {
        let relay = try InboundLimitsEndToEndTests.relay(limits: "limits:\n  data_timeout: 2s")
        defer { relay.stop() }
        let client = try Self.greetedDripClient(relay)
        client.send("EHLO client.test\r\nMAIL FROM:<a@acme.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        var replies: [String] = []
        while replies.count < 4, case let next = Self.reply(client), !next.isEmpty { replies.append(next) }
        #expect(replies.last?.hasPrefix("354 ") == true, "\(replies)")

        // A byte every 0.4 s: an inactivity timer of 2 s never fires (before the fix this
        // ran until giveUp with no reply). The deadline is 2 s after the 354; the slack is
        // for a loaded machine.
        let (reply, seconds) = Self.drip(client, giveUp: 15)

        #expect(reply.hasPrefix("421 4.4.2 "), "no 421 after \(seconds) s of dripping")
        #expect(seconds < 12, "the 421 came \(seconds) s after 354 with data_timeout 2s")
        #expect(client.isClosedByServer())
        InboundLimitsEndToEndTests.expectRefusalLogged(relay, command: "TIMEOUT", code: 421, enhanced: "4.4.2")
        // Queued means answered 250: neither happened. (tmp/ holds the file pool's files.)
        #expect(try SpoolInspector(path: relay.spoolPath).messages().isEmpty)
    }

    @Test func aDrippedCommandGets421AtTheCommandDeadline() throws {
        let relay = try InboundLimitsEndToEndTests.relay(limits: "limits:\n  idle_timeout: 2s")
        defer { relay.stop() }
        let client = try Self.greetedDripClient(relay)

        let (reply, seconds) = Self.drip(client, giveUp: 15)

        #expect(reply.hasPrefix("421 4.4.2 "), "no 421 after \(seconds) s of dripping")
        #expect(seconds < 12)
        #expect(client.isClosedByServer())
    }

    @Test func connectionsFromOneAddressAreCappedAtTheLimitAndLoggedOncePerBurst() throws {
        let relay = try InboundLimitsEndToEndTests.relay(limits: "limits:\n  max_connections_per_client: 2")
        defer { relay.stop() }
        let first = try RawSMTPClient(port: relay.port)
        #expect(first.readReply().hasPrefix("220 "))
        let second = try RawSMTPClient(port: relay.port)
        #expect(second.readReply().hasPrefix("220 "), "at the limit")
        for _ in 0..<3 {
            let over = try RawSMTPClient(port: relay.port)
            #expect(over.readReply() == "421 4.7.0 relay.test Error: too many connections from your address")
            #expect(over.isClosedByServer())
        }
        let refusal = ["reply=\"421 4.7.0 relay.test Error: too many connections from your address\""]
        InboundLimitsEndToEndTests.expectRefusalLogged(relay, command: "CONNECT", code: 421, enhanced: "4.7.0",
                                                       containing: refusal)

        first.send("QUIT\r\n")
        #expect(first.readReply().hasPrefix("221 "))
        #expect(first.isClosedByServer())
        var third: RawSMTPClient?
        #expect(try eventually(timeout: 10) {
            let client = try RawSMTPClient(port: relay.port)
            third = client
            return client.readReply().hasPrefix("220 ")
        }, "a slot is free again once the first connection has closed")
        withExtendedLifetime(third) {
            // A new burst is logged again, once.
            let over = try? RawSMTPClient(port: relay.port)
            #expect(over?.readReply().hasPrefix("421 4.7.0") == true)
        }
        let lines = { relay.log.split(separator: "\n").filter { $0.contains("too many connections from your address") } }
        #expect(eventually(timeout: 10) { lines().count == 2 }, "\(lines())")
        withExtendedLifetime(second) {}
    }
}
