import Foundation
import Testing
@testable import SmarthostCore

/// What happens to a message when the upstream or the route is wrong: deferred, retried or
/// dead-lettered as specified, never lost, and no credential ever sent in clear text.
@Suite(.serialized) struct DeliveryFailuresEndToEndTests {
    static let certificates = TestCertificates.shared
    static var localhostLeaf: (certificate: String, key: String) { (certificates.localhost.certificate, certificates.localhost.key) }

    /// A relay whose host level is one custom route; fast retries.
    static func relay(route: String, queue: String = "{ retry_min: 1s, retry_max: 2s, max_age: 1h }") throws -> RelayProcess {
        let relay = try RelayProcess(configBody: """
        queue: \(queue)
        default:
          host: 127.0.0.1
          port: 9
          tls: none
        host:
          use: custom
        \(route)
        """)
        try relay.start()
        return relay
    }

    static func route(port: UInt16, tls: String = "starttls", caFile: Bool = true, auth: String? = "user@test.example", password: String = "right-pass", host: String = "localhost", extra: String = "") -> String {
        var lines = ["  host: \(host)", "  port: \(port)", "  tls: \(tls)", "  timeout: 5s"]
        if caFile { lines.append("  ca_file: \(certificates.caCertificate)") }
        if let auth { lines += ["  username: \(auth)", "  password: \(password)"] }
        if !extra.isEmpty { lines.append("  " + extra) }
        return lines.joined(separator: "\n")
    }

    static func send(_ relay: RelayProcess, to: [String] = ["rcpt@example.com"], subject: String = "test") throws {
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "app@platform.example", to: to,
                                                data: "From: app@platform.example\r\nSubject: \(subject)\r\n\r\nbody line\r\n")
    }

    /// Waits until the one queued message has been attempted and returns it.
    static func deferredMessage(_ relay: RelayProcess, attempts: Int = 1) throws -> SpoolInspector.Kept? {
        var found: SpoolInspector.Kept?
        _ = try eventually(timeout: 20) {
            found = try SpoolInspector(path: relay.spoolPath).messages().first { $0.attempts >= attempts }
            return found != nil
        }
        return found
    }

    @Test func certificateForAnotherHostIsDeferredWithTheReason() throws {
        let upstream = try UpstreamProcess(mode: .starttls, certificate: (Self.certificates.wrongHost.certificate, Self.certificates.wrongHost.key), auth: "user@test.example:right-pass")
        let relay = try Self.relay(route: Self.route(port: upstream.port))
        try Self.send(relay)
        let message = try #require(try Self.deferredMessage(relay))
        #expect(message.lastError?.contains("host name") == true, "\(message.lastError ?? "nil")")
        #expect(upstream.received().isEmpty)
        #expect(upstream.authLog.isEmpty, "no AUTH may be sent over an unverified connection")
        relay.stop()
    }

    @Test func selfSignedCertificateWithoutCAFileIsDeferred() throws {
        let upstream = try UpstreamProcess(mode: .starttls, certificate: (Self.certificates.selfSigned.certificate, Self.certificates.selfSigned.key), auth: "user@test.example:right-pass")
        let relay = try Self.relay(route: Self.route(port: upstream.port, caFile: false))
        try Self.send(relay)
        let message = try #require(try Self.deferredMessage(relay))
        #expect(message.lastError?.lowercased().contains("certificate") == true, "\(message.lastError ?? "nil")")
        #expect(upstream.authLog.isEmpty)
        relay.stop()
    }

    @Test func starttlsNotOfferedNeverFallsBackToPlaintext() throws {
        let upstream = try UpstreamProcess(mode: .plain, auth: "user@test.example:right-pass")
        let relay = try Self.relay(route: Self.route(port: upstream.port))
        try Self.send(relay)
        let message = try #require(try Self.deferredMessage(relay))
        #expect(message.lastError?.contains("STARTTLS") == true, "\(message.lastError ?? "nil")")
        #expect(upstream.received().isEmpty)
        #expect(upstream.authLog.isEmpty, "credentials must never be sent in clear text")
        relay.stop()
        #expect(!relay.allLogs.contains("right-pass"))
    }

    @Test func rejectedAuthIsDeferredAndSaysAuth() throws {
        let upstream = try UpstreamProcess(mode: .starttls, certificate: Self.localhostLeaf, auth: "user@test.example:right-pass")
        let relay = try Self.relay(route: Self.route(port: upstream.port, password: "wrong-pass"))
        try Self.send(relay)
        let message = try #require(try Self.deferredMessage(relay))
        #expect(message.lastError?.contains("AUTH") == true, "\(message.lastError ?? "nil")")
        #expect(!upstream.authLog.isEmpty && upstream.authLog.allSatisfy { $0.hasPrefix("tls=1") })
        relay.stop()
        #expect(!relay.allLogs.contains("wrong-pass"))
    }

    @Test func transientReplyIsRetriedThenDeliveredOnce() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--data-reply", "451 4.3.0 try again later:1"])
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil))
        try Self.send(relay, subject: "retry me")
        let arrived = upstream.waitForMessages(1, timeout: 20)
        #expect(arrived.count == 1)
        #expect(try eventually { try SpoolInspector(path: relay.spoolPath).messages().isEmpty })
        // Recorded as delivered: the relay is done with it, a second copy could only have
        // been sent before this point.
        #expect(eventually { relay.log.contains("<6>delivered") }, "\(relay.log)")
        #expect(upstream.received().count == 1, "delivered exactly once")
        #expect(relay.log.contains("deferred"))
        relay.stop()
    }

    @Test func permanentReplyMakesADeadLetterWithTheUpstreamReply() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--data-reply", "554 5.7.1 message refused by policy:100"])
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil))
        try Self.send(relay)
        var dead: [SpoolInspector.Kept] = []
        #expect(try eventually { dead = try SpoolInspector(path: relay.spoolPath).deadLetters(); return !dead.isEmpty })
        #expect(dead.first?.failure?.contains("554 5.7.1 message refused by policy") == true, "\(dead.first?.failure ?? "nil")")
        // Only the failure notice to the sender (from <>) may be queued now, not the message.
        #expect(try SpoolInspector(path: relay.spoolPath).messages().allSatisfy { $0.sender.isEmpty })
        relay.stop()
    }

    @Test func oneRefusedRecipientDoesNotFailTheOthers() throws {
        let upstream = try UpstreamProcess(mode: .plain, extra: ["--reject-rcpt", "gone@example.com=550 5.1.1 no such user"])
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil))
        try Self.send(relay, to: ["ok@example.com", "gone@example.com"])
        let arrived = upstream.waitForMessages(1)
        #expect(arrived.first?.recipients == ["ok@example.com"])
        var dead: [SpoolInspector.Kept] = []
        #expect(try eventually { dead = try SpoolInspector(path: relay.spoolPath).deadLetters(); return !dead.isEmpty })
        #expect(dead.first?.failure?.contains("gone@example.com") == true)
        #expect(dead.first?.failure?.contains("550 5.1.1") == true)
        relay.stop()
    }

    @Test func upstreamDownThenUpIsDelivered() throws {
        // A port with nothing behind it yet.
        let probe = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let port = probe.address.port
        probe.close()
        let relay = try Self.relay(route: Self.route(port: port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"))
        try Self.send(relay)
        let message = try #require(try Self.deferredMessage(relay))
        #expect(message.lastError?.contains("refused") == true, "\(message.lastError ?? "nil")")
        let upstream = try UpstreamProcess(mode: .plain, port: port)
        #expect(upstream.waitForMessages(1, timeout: 20).count == 1)
        relay.stop()
    }

    /// Small messages go out from the copy kept in memory at acceptance, big ones (and every
    /// retry) from the spool file: both must arrive byte for byte.
    @Test func smallMessageFromMemoryAndBigOneFromSpoolArriveIntact() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"))
        let small = "From: app@platform.example\r\nSubject: small\r\n\r\n.leading dot\r\nshort body\r\n"
        var big = "From: app@platform.example\r\nSubject: big\r\n\r\n"
        for line in 0..<3_000 { big += ".line \(line) of a message well past the 64 KiB write buffer\r\n" }
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "app@platform.example", to: ["a@example.com"], data: small)
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "app@platform.example", to: ["b@example.com"], data: big)
        let arrived = upstream.waitForMessages(2)
        #expect(arrived.count == 2)
        let smallArrived = try #require(arrived.first { $0.content.contains("Subject: small") })
        let bigArrived = try #require(arrived.first { $0.content.contains("Subject: big") })
        #expect(smallArrived.content.hasSuffix("\r\n.leading dot\r\nshort body\r\n"))
        #expect(bigArrived.content.hasSuffix(String(big.dropFirst(big.count - 70_000))))
        #expect(bigArrived.content.utf8.count > 64 * 1024)
        relay.stop()
    }

    /// `queue.connections_per_route` caps the parallel connections to one upstream, and the
    /// queue still drains through them.
    @Test func parallelConnectionsToOneUpstreamStayWithinTheCap() throws {
        let upstream = try UpstreamProcess(fault: "slow-data")
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"),
                                   queue: "{ retry_min: 1s, retry_max: 2s, max_age: 1h, connections_per_route: 2 }")
        let submissions = (0..<6).map { index in
            Thread { try? Self.send(relay, subject: "parallel \(index)") }
        }
        submissions.forEach { $0.start() }
        let arrived = upstream.waitForMessages(6, timeout: 30)
        #expect(arrived.count == 6)
        let peak = try String(contentsOf: upstream.outdir.appendingPathComponent("max_connections"), encoding: .utf8)
        #expect(peak == "2", "at most 2 connections to the upstream at once, saw \(peak)")
        relay.stop()
    }

    /// `chattr +i` works where the relays' spools live: tmpfs and containers without
    /// CAP_LINUX_IMMUTABLE refuse it, and then the test is reported as not run.
    static let immutableDirectoriesWork: Bool = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-chattr-\(UUID().uuidString)").path
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil,
              let locked = try? ToolRun.run("/usr/bin/chattr", ["+i", directory]), locked.status == 0 else { return false }
        _ = try? ToolRun.run("/usr/bin/chattr", ["-i", directory])
        try? FileManager.default.removeItem(atPath: directory)
        return true
    }()

    /// The spool cannot record a delivery (here `queue/` is immutable, which stops root
    /// too): the relay keeps trying, and the message leaves the queue once it can — instead
    /// of staying there to be delivered again after the next restart.
    @Test(.enabled(if: immutableDirectoriesWork, "chattr +i is not possible in the temp directory (tmpfs, or no CAP_LINUX_IMMUTABLE)"))
    func deliveredButUnrecordedIsRecordedOnceTheSpoolRecovers() throws {
        let probe = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let port = probe.address.port
        probe.close()
        let relay = try Self.relay(route: Self.route(port: port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"))
        defer { relay.stop() }
        try Self.send(relay, subject: "record me")
        _ = try #require(try Self.deferredMessage(relay))
        let queue = relay.spoolPath + "/queue"
        let locked = try ToolRun.run("/usr/bin/chattr", ["+i", queue])
        try #require(locked.status == 0, "chattr +i \(queue): \(locked.output)")
        defer { _ = try? ToolRun.run("/usr/bin/chattr", ["-i", queue]) }
        let upstream = try UpstreamProcess(mode: .plain, port: port)
        #expect(upstream.waitForMessages(1, timeout: 20).count == 1)
        #expect(eventually { relay.log.contains("spool update failed, will retry") }, "\(relay.log)")
        #expect(try SpoolInspector(path: relay.spoolPath).messages().count == 1)
        _ = try ToolRun.run("/usr/bin/chattr", ["-i", queue])
        #expect(try eventually { try SpoolInspector(path: relay.spoolPath).messages().isEmpty })
        // The file leaves queue/ a moment before the line is written.
        #expect(eventually { relay.log.contains("spool update done") }, "\(relay.log)")
        #expect(upstream.received().count == 1, "recorded, not delivered twice")
    }

    /// A client that resets the connection right after its final dot does not hear 250,
    /// but the message is durable by then: it must be delivered now, not after a restart.
    @Test func messageCommittedAfterTheClientVanishedIsStillDelivered() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"))
        defer { relay.stop() }
        let client = try InboundLimitsEndToEndTests.greeted(relay)
        client.send("MAIL FROM:<app@platform.example>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n")
        #expect(client.readReplies(3).last?.hasPrefix("354") == true)
        client.send("Subject: vanished\r\n\r\nbody\r\n.\r\n")
        client.abort()
        let arrived = upstream.waitForMessages(1, timeout: 10)
        #expect(arrived.first?.content.contains("Subject: vanished") == true,
                "queued: \((try? SpoolInspector(path: relay.spoolPath).messages().count) ?? -1)")
    }

    /// An idle upstream connection says QUIT after 5 s; until the server answers and
    /// closes, it must not be given the next message (that crashed the relay once: the
    /// session refuses to send after QUIT).
    @Test func messageArrivingWhileAnIdleConnectionQuitsGoesOnANewConnection() throws {
        let upstream = try UpstreamProcess(fault: "slow-quit")
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"))
        defer { relay.stop() }
        try Self.send(relay, subject: "first")
        #expect(upstream.waitForMessages(1).count == 1)
        // The idle connection has said QUIT (after idleQuitMilliseconds); the upstream
        // answers it 3 s late, so the next message arrives while it is quitting.
        let idleQuit = TimeInterval(DeliveryQueue.idleQuitMilliseconds) / 1000
        #expect(eventually(timeout: idleQuit + 10) { upstream.quitCount == 1 })
        try Self.send(relay, subject: "second")
        let arrived = upstream.waitForMessages(2, timeout: 20)
        #expect(arrived.contains { $0.content.contains("Subject: second") })
        #expect(relay.isRunning, "\(relay.log)")
    }

    @Test func connectionCutMidDataIsRetriedAndLoggedAsPossibleDuplicate() throws {
        let upstream = try UpstreamProcess(fault: "cut-in-data")
        let relay = try Self.relay(route: Self.route(port: upstream.port, tls: "none", caFile: false, auth: nil, host: "127.0.0.1"))
        try Self.send(relay, subject: "cut me")
        let arrived = upstream.waitForMessages(1, timeout: 20)
        #expect(arrived.count == 1)
        #expect(arrived.first?.content.contains("Subject: cut me") == true)
        #expect(try eventually { try SpoolInspector(path: relay.spoolPath).messages().isEmpty })
        // The whole body had been written when the connection died: the upstream may have it.
        #expect(eventually(timeout: 5) { relay.log.contains("possible_duplicate=yes") }, "\(relay.log)")
        relay.stop()
    }
}
