import Foundation
import Testing
@testable import SmarthostCore

/// Bare LF normalized (Postfix 3.9's `smtpd_forbid_bare_newline = normalize`, our default):
/// a client writing LF-only lines is relayed with CRLF, and the classic smuggling payload
/// arrives upstream as text inside the one message it was hidden in.
@Suite(.serialized) struct BareLineFeedEndToEndTests {
    static func relayAndUpstream() throws -> (RelayProcess, UpstreamProcess) {
        let upstream = try UpstreamProcess(mode: .plain)
        let relay = try RelayProcess(configBody: """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: \(upstream.port)
          tls: none
        host:
          use: default
        """)
        try relay.start()
        return (relay, upstream)
    }

    @Test func lineFeedOnlyClientIsRelayedWithCRLFAndSmugglingStaysInside() throws {
        let (relay, upstream) = try Self.relayAndUpstream()
        let client = try RawSMTPClient(port: relay.port)
        #expect(client.readReply().hasPrefix("220 "))
        client.send("EHLO lf.test\n")
        #expect(client.readReply().contains("250 "))
        client.send("MAIL FROM:<app@acme.example>\n")
        #expect(client.readReply().hasPrefix("250 2.1.0"))
        client.send("RCPT TO:<ops@example.com>\n")
        #expect(client.readReply().hasPrefix("250 2.1.5"))
        client.send("DATA\n")
        #expect(client.readReply().hasPrefix("354 "))
        client.send("Subject: lf only\n\nfirst\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.com>\nDATA\n"
            + "smuggled\n.\n..stuffed\nend\r\n.\r\n")
        #expect(client.readReply().hasPrefix("250 2.0.0 Ok: queued as"))
        client.send("QUIT\n")
        #expect(client.readReply().hasPrefix("221 "))

        let received = upstream.waitForMessages(1)
        #expect(received.count == 1)
        let message = try #require(received.first)
        #expect(message.mailFrom == "app@acme.example")
        #expect(message.recipients == ["ops@example.com"])
        let body = message.content[(message.content.range(of: "Subject: lf only")?.lowerBound ?? message.content.startIndex)...]
        #expect(body == "Subject: lf only\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\n"
            + "DATA\r\nsmuggled\r\n.\r\n.stuffed\r\nend\r\n")
        #expect(!message.content.utf8.enumerated().contains { index, byte in
            byte == 10 && (index == 0 || Array(message.content.utf8)[index - 1] != 13)
        }, "a bare LF reached the upstream")
        // Nothing else arrives: the smuggled envelope never became a message.
        Thread.sleep(forTimeInterval: 0.5)
        #expect(upstream.received().count == 1)
        relay.stop()
    }
}
