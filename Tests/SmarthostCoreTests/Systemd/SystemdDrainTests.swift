import Foundation
import Glibc
import Testing

/// SIGTERM: stop accepting, `421 4.3.2` to idle sessions, let a message in the middle of
/// DATA finish with its 250, then exit 0.
@Suite(.serialized) struct SystemdDrainTests {
    @Test func sigtermDrainsIdleAndLetsDataFinish() throws {
        let relay = try RelayProcess()
        try relay.start()
        let idle = try RawSMTPClient(port: relay.port)
        #expect(idle.readReply().hasPrefix("220 "))
        idle.send("EHLO idle.test\r\n")
        #expect(idle.readReply().hasPrefix("250"))

        let busy = try RawSMTPClient(port: relay.port)
        _ = busy.readReply()
        busy.send("EHLO busy.test\r\n")
        _ = busy.readReply()
        busy.send("MAIL FROM:<app@acme.example>\r\n")
        #expect(busy.readReply().hasPrefix("250"))
        busy.send("RCPT TO:<ops@example.com>\r\n")
        #expect(busy.readReply().hasPrefix("250"))
        busy.send("DATA\r\n")
        #expect(busy.readReply().hasPrefix("354"))
        busy.send("Subject: drain\r\n\r\nfirst half\r\n")

        relay.signal(SIGTERM)
        #expect(eventually(timeout: 10) { relay.log.contains("stopping") })
        let goodbye = idle.readReply()
        #expect(goodbye.hasPrefix("421 4.3.2"), "idle session: \(goodbye)")
        #expect(idle.isClosedByServer())
        #expect(SystemdTestSupport.banner(port: relay.port) == nil, "no new connections while draining")
        #expect(relay.isRunning, "still draining the session in DATA")

        busy.send("second half\r\n.\r\n")
        let accepted = busy.readReply()
        #expect(accepted.hasPrefix("250 "), "the message in flight finishes: \(accepted)")
        busy.send("QUIT\r\n")
        _ = busy.readReply()
        #expect(relay.waitForExit(timeout: 10) == 0)
        let kept = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(kept.count == 1 && kept[0].content.hasSuffix("first half\r\nsecond half\r\n"))
    }
}
