import Foundation
import Glibc
import Testing

/// SIGHUP while clients submit: a good config is swapped in whole (a new listener accepts, a
/// new limit applies), a bad one is refused with its line and key and the old one keeps
/// working; every message that got 250 is in the spool.
@Suite(.serialized) struct SystemdReloadTests {
    static func body(maxRecipients: String) -> String {
        """
        limits:
          max_recipients: \(maxRecipients)
        \(RelayProcess.defaultRoutes)
        """
    }

    /// Number of `RCPT TO` accepted before the first refusal, over a fresh session.
    static func acceptedRecipients(port: UInt16, trying count: Int) throws -> (accepted: Int, refusal: String) {
        let client = try RawSMTPClient(port: port)
        _ = client.readReply()
        client.send("EHLO app.test\r\n")
        _ = client.readReply()
        client.send("MAIL FROM:<app@acme.example>\r\n")
        _ = client.readReply()
        for n in 0..<count {
            client.send("RCPT TO:<r\(n)@example.com>\r\n")
            let reply = client.readReply()
            if !reply.hasPrefix("250") { return (n, reply) }
        }
        client.send("QUIT\r\n")
        return (count, "")
    }

    static func acceptedCount(_ log: String) -> Int {
        log.components(separatedBy: "<6>accepted ").count - 1
    }

    @Test func goodThenBadReloadUnderLoadLosesNothing() throws {
        let notify = try FakeNotifySocket()
        let first = SystemdTestSupport.freePort(), second = SystemdTestSupport.freePort(), third = SystemdTestSupport.freePort()
        let relay = try RelayProcess(configBody: Self.body(maxRecipients: "100"), environment: ["NOTIFY_SOCKET": notify.path],
                                     listen: ["127.0.0.1:\(first)"])
        try relay.start()
        #expect(SystemdTestSupport.banner(port: second) == nil)
        let load = try SubmitLoad(port: first, threads: 4, seconds: 6)
        #expect(eventually(timeout: 10) { Self.acceptedCount(relay.log) >= 5 }, "the load is under way")

        // Good: a second listener and a lower recipient limit.
        try relay.writeConfig(body: Self.body(maxRecipients: "2"), listen: ["127.0.0.1:\(first)", "127.0.0.1:\(second)"])
        relay.signal(SIGHUP)
        #expect(eventually(timeout: 10) { relay.log.contains("reloaded") })
        #expect(relay.log.contains("listening address=127.0.0.1:\(second)"))
        #expect(SystemdTestSupport.banner(port: second)?.hasPrefix("220 ") == true, "the new listen address accepts")
        let limited = try Self.acceptedRecipients(port: second, trying: 3)
        #expect(limited.accepted == 2 && limited.refusal.hasPrefix("452"), "new limit applies: \(limited)")
        // The load goes on under the new configuration before the bad reload.
        let acceptedSoFar = Self.acceptedCount(relay.log)
        #expect(eventually(timeout: 10) { Self.acceptedCount(relay.log) >= acceptedSoFar + 5 })

        // Bad: refused with line and key; the running config stays (both listeners, limit 2).
        try relay.writeConfig(body: Self.body(maxRecipients: "lots"),
                              listen: ["127.0.0.1:\(first)", "127.0.0.1:\(third)"])
        relay.signal(SIGHUP)
        #expect(eventually(timeout: 10) { relay.log.contains("reload refused") })
        let refusal = relay.log.split(separator: "\n").first { $0.contains("reload refused") }.map(String.init) ?? ""
        #expect(refusal.contains("line 5") && refusal.contains("limits.max_recipients"), "refusal: \(refusal)")
        #expect(refusal.hasPrefix("<3>"), "logged as an error")
        #expect(SystemdTestSupport.banner(port: second)?.hasPrefix("220 ") == true, "the old config keeps its listener")
        #expect(SystemdTestSupport.banner(port: third) == nil, "nothing of the bad config applied")
        #expect(try Self.acceptedRecipients(port: first, trying: 3).accepted == 2)
        #expect(try SystemdTestSupport.submit(port: first).hasPrefix("250 "), "the old config keeps accepting mail")

        let acks = load.finish()
        #expect(acks.count > 20, "the load should have had messages accepted: \(acks.count)")
        let kept = Dictionary(try SpoolInspector(path: relay.spoolPath).messages().map { ($0.id, $0) }) { a, _ in a }
        let missing = acks.filter { ack in kept[ack.id]?.content.contains("Subject: \(ack.token)\r\n") != true }
        #expect(missing.isEmpty, "acknowledged but not in the spool: \(missing.prefix(5))")

        // systemd saw RELOADING=1 … READY=1 twice, the failed reload included.
        let states = notify.messages.compactMap { m -> String? in
            m.fields["RELOADING"] != nil ? "reloading" : (m.fields["READY"] != nil ? "ready" : nil)
        }
        #expect(states == ["ready", "reloading", "ready", "reloading", "ready"], "\(states)")
        relay.stop()
    }
}
