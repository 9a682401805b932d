import Foundation
import Glibc
import Testing

/// Socket activation with Debian's `systemd-socket-activate`: it binds the port, waits for
/// the first client, then execs the relay with `LISTEN_FDS=1`/`LISTEN_PID`; the relay adopts
/// fd 3 and ignores `listen:` (also across a reload).
@Suite(.serialized) struct SystemdSocketActivationTests {
    static let tool = "/usr/bin/systemd-socket-activate"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: tool), "systemd-socket-activate not installed"))
    func adoptsThePassedSocketAndIgnoresListen() throws {
        let notify = try FakeNotifySocket()
        let activated = SystemdTestSupport.freePort(), configured = SystemdTestSupport.freePort()
        let relay = try RelayProcess(listen: ["127.0.0.1:\(configured)"])
        try relay.spawn(launcher: [Self.tool, "-l", "127.0.0.1:\(activated)", "-E", "NOTIFY_SOCKET=\(notify.path)"])
        // The tool holds the socket and starts the relay on the first connection.
        #expect(eventually(timeout: 10) { relay.log.contains("Listening on 127.0.0.1:\(activated)") })
        let first = try RawSMTPClient(port: activated)
        #expect(first.readReply().hasPrefix("220 "))
        try relay.waitUntilListening()
        #expect(relay.port == activated)
        #expect(relay.log.contains("socket activation fds=1"))
        #expect(notify.waitFor("READY", "1") != nil)
        #expect(try SystemdTestSupport.submit(port: activated).hasPrefix("250 "))
        #expect(SystemdTestSupport.banner(port: configured) == nil, "listen: is ignored under socket activation")

        // A reload keeps the adopted socket and still ignores listen:.
        try relay.writeConfig(body: RelayProcess.defaultRoutes, listen: ["127.0.0.1:\(configured)"])
        relay.signal(SIGHUP)
        #expect(eventually(timeout: 10) { relay.log.contains("reloaded") })
        #expect(SystemdTestSupport.banner(port: configured) == nil)
        #expect(SystemdTestSupport.banner(port: activated)?.hasPrefix("220 ") == true)
        #expect(try SpoolInspector(path: relay.spoolPath).messages().count == 1)
        relay.stop()
        #expect(relay.waitForExit() == 0)
    }
}
