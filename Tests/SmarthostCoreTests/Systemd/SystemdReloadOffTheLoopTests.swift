import Foundation
import Glibc
import Testing

/// Issue 14, defect 4: reading the configuration at reload never blocks the event loop. The
/// config file is made a FIFO before SIGHUP, so the reload's read blocks until the test
/// writes the new configuration into it; meanwhile the relay must keep answering SMTP.
@Suite(.serialized) struct SystemdReloadOffTheLoopTests {
    @Test func theLoopServesWhileAReloadIsReadingTheConfiguration() throws {
        let relay = try RelayProcess()
        try relay.start()
        defer { relay.stop() }
        let newConfig = try String(contentsOfFile: relay.configPath, encoding: .utf8)
            .replacingOccurrences(of: "hostname: relay.test", with: "hostname: reloaded.test")
        #expect(newConfig.contains("hostname: reloaded.test"))
        #expect(unlink(relay.configPath) == 0)
        #expect(mkfifo(relay.configPath, 0o600) == 0)
        // However the test ends, the reload's blocked read is given its file.
        var fed = false
        func feed() {
            guard !fed else { return }
            fed = true
            signal(SIGPIPE, SIG_IGN)   // a relay gone meanwhile: EPIPE, not the end of the test run
            let fd = open(relay.configPath, O_WRONLY)   // blocks until the relay opens it to read
            guard fd >= 0 else { return }
            _ = Array(newConfig.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        defer { feed() }

        relay.signal(SIGHUP)
        #expect(eventually(timeout: 10) { relay.log.contains("reloading") }, "the relay took the signal")

        // The reload is now blocked reading the FIFO. Before the fix that was the loop itself:
        // no greeting came until the file was written.
        let client = try RawSMTPClient(port: relay.port, timeoutSeconds: 5)
        #expect(client.readReply().hasPrefix("220 relay.test "), "the loop answered during the reload")
        client.send("EHLO app.test\r\n")
        #expect(client.readReply().contains("250 "))
        #expect(!relay.log.contains("reloaded"))

        feed()
        #expect(eventually(timeout: 10) { relay.log.contains("reloaded") })
        let after = try RawSMTPClient(port: relay.port)
        #expect(after.readReply().hasPrefix("220 reloaded.test "), "the parsed configuration was applied")
        client.send("QUIT\r\n")
        #expect(client.readReply().hasPrefix("221 "), "the session begun before the reload goes on")
    }
}
