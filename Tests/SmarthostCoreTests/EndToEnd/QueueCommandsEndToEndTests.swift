import Foundation
import Testing
@testable import SmarthostCore

/// `smarthost queue …` against a running `smarthost serve`: list/show read the spool,
/// retry/delete/flush/status go through `<spool>/control.sock` when the daemon serves it
/// (and fall back to the spool directly while it does not).
@Suite(.serialized) struct QueueCommandsEndToEndTests {
    private func queue(_ relay: RelayProcess, _ arguments: [String]) throws -> ToolRun {
        try ToolRun.run(RelayProcess.binaryPath, ["queue"] + arguments + ["--config", relay.configPath], timeout: 30)
    }

    @Test func queueCommandsWorkWhileTheDaemonRuns() throws {
        let relay = try RelayProcess()
        try relay.start()
        defer { relay.stop() }

        // One message through SMTP: its upstream (port 9) refuses, so it stays queued.
        let client = try RawSMTPClient(port: relay.port)
        _ = client.readReply()
        client.send("EHLO client.test\r\nMAIL FROM:<app@acme.example>\r\nRCPT TO:<ops@example.com>\r\nDATA\r\n")
        _ = client.readReplies(4)
        client.send("Subject: queued via smtp\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        let queued = client.readReply()
        #expect(queued.hasPrefix("250 2.0.0 Ok: queued as "))
        let id = String(queued.split(separator: " ").last ?? "")

        let list = try queue(relay, ["list"])
        #expect(list.status == 0)
        #expect(list.output.split(separator: "\n").contains { $0.hasPrefix(id + " ") }, "\(list.output)")
        let show = try queue(relay, ["show", id])
        #expect(show.status == 0)
        #expect(show.output.contains("Subject: queued via smtp"))
        #expect(!show.output.contains("body"))
        let json = try queue(relay, ["list", "--json"])
        #expect(json.output.contains("\"id\": \"\(id)\""))

        // A dead letter the daemon has never seen: retried, then deleted, by the CLI.
        let spool = try Spool(root: relay.spoolPath)
        let dead = try SpoolTestData.storeOK(spool, SpoolTestData.message(tag: "dead"))
        try spool.moveToFailed(dead, reason: "RCPT TO <x@example.com>: 550 5.1.1 user unknown")
        let failed = try queue(relay, ["list", "--failed"])
        #expect(failed.output.hasPrefix(dead.rawValue + " "))
        #expect(failed.output.contains("550 5.1.1 user unknown"))
        let retried = try queue(relay, ["retry", dead.rawValue])
        #expect(retried.status == 0, "\(retried.output)")
        let afterRetry = try queue(relay, ["list", "--failed"])
        #expect(afterRetry.output.isEmpty, "\(retried.output) / \(afterRetry.output) / \(relay.log)")
        let deleted = try queue(relay, ["delete", dead.rawValue])
        #expect(deleted.status == 0, "\(deleted.output)")
        #expect(deleted.output.contains("\(dead) deleted"))
        #expect(try queue(relay, ["delete", dead.rawValue]).status == 1)

        #expect(try queue(relay, ["flush"]).status == 0)
        let status = try queue(relay, ["status"])
        #expect(status.status == 0)
        #expect(status.output.contains("queued"))
        #expect(try queue(relay, ["show", "not-an-id"]).status != 0)
        #expect(relay.isRunning)
    }

    /// Prefix ids and selectors against a spool with no daemon (direct mode, under the lock).
    @Test func prefixesSelectorsAndSummaryOnAStoppedRelay() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let spool = try Spool(root: directory.root)
        var ids: [SpoolID] = []
        for org in ["acme", "acme", "globex"] {
            ids.append(try SpoolTestData.store(spool, SpoolTestData.message(tag: org)) { id in
                var envelope = SpoolTestData.envelope(id)
                envelope.org = org
                envelope.route = "smtp.\(org).example:587"
                return envelope
            }.get())
        }
        let run = { (arguments: [String]) throws -> ToolRun in
            try ToolRun.run(RelayProcess.binaryPath, ["queue"] + arguments + ["--spool", directory.root], timeout: 30)
        }
        let prefix = String(ids[2].rawValue.prefix(17))
        let show = try run(["show", prefix])
        #expect(show.status == 0 && show.output.contains("id:           \(ids[2])"), "\(show.output)")
        let summary = try run(["summary"])
        #expect(summary.output.contains("acme") && summary.output.contains("smtp.acme.example:587"), "\(summary.output)")
        let deleted = try run(["delete", "--org", "acme"])
        #expect(deleted.status == 0, "\(deleted.output)")
        #expect(try spool.list(.queue).map(\.id) == [ids[2]])
        #expect(try run(["delete"]).status != 0, "nothing selected is refused, not 'everything'")
        #expect(try run(["show", "1k"]).output.contains("at least 4 characters"))
    }
}

/// `smarthost status`, and messages behind a down route, against a live relay.
@Suite(.serialized) struct StatusEndToEndTests {
    /// A relay whose only upstream refuses connections, started (before any mail).
    private func relayWithADownRoute(retryMin: String, retryMax: String) throws -> RelayProcess {
        let relay = try RelayProcess(configBody: """
        queue: { retry_min: \(retryMin), retry_max: \(retryMax) }
        default:
          host: 127.0.0.1
          port: 9
          tls: none
        """)
        try relay.start()
        return relay
    }

    /// The first message: its attempt fails and marks the route down.
    private func sendUntilTheRouteIsDown(_ relay: RelayProcess) throws {
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "a@example.com", to: ["b@example.com"],
                                               data: "Subject: first\r\n\r\nx\r\n")
        #expect(eventually(timeout: 10) { relay.log.contains("route down") })
    }

    @Test func statusAndQueueListNameTheDownRouteAndItsErrorOnce() throws {
        let relay = try relayWithADownRoute(retryMin: "1s", retryMax: "2s")
        defer { relay.stop() }
        let status = { () throws -> ToolRun in
            try ToolRun.run(RelayProcess.binaryPath, ["status", "--config", relay.configPath], timeout: 30)
        }
        #expect(try status().output.contains("routes down: none"))
        try sendUntilTheRouteIsDown(relay)
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "a@example.com", to: ["b@example.com"],
                                               data: "Subject: second\r\n\r\nx\r\n")
        // Several retries later, still one "route down" line for the one transition.
        #expect(eventually(timeout: 15) { relay.log.components(separatedBy: "deferred").count > 4 })
        #expect(relay.log.components(separatedBy: "route down").count == 2, "\(relay.log)")

        let text = try status().output
        #expect(text.contains("running (pid \(relay.pid))"), "\(text)")
        #expect(text.contains("routes down:") && text.contains("127.0.0.1:9 for ") && text.contains("Connection refused"), "\(text)")
        #expect(text.contains("queue: 2 messages"), "\(text)")
        let json = try ToolRun.run(RelayProcess.binaryPath, ["status", "--json", "--config", relay.configPath])
        #expect(json.output.contains("\"routes_down\": [{\"upstream\": \"127.0.0.1:9\""), "\(json.output)")
    }

    /// A message that arrives while its route is down waits without an attempt of its own;
    /// `queue list` shows the route's error and retry time instead of "due now, no error".
    @Test func aMessageBehindADownRouteShowsTheRoutesError() throws {
        let relay = try relayWithADownRoute(retryMin: "1m", retryMax: "2m")
        defer { relay.stop() }
        try sendUntilTheRouteIsDown(relay)
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "a@example.com", to: ["b@example.com"],
                                               data: "Subject: behind\r\n\r\nx\r\n")
        let lines = try ToolRun.run(RelayProcess.binaryPath, ["queue", "list", "--config", relay.configPath]).output
            .split(separator: "\n")
        #expect(lines.count == 2)
        let behind = try #require(lines.last)
        #expect(behind.contains("  0  in ") && behind.contains("route down: "), "\(lines)")
    }

}

/// `queue hold` / `queue release` against a live relay and across a restart.
@Suite(.serialized) struct QueueHoldEndToEndTests {
    @Test func aHeldMessageStaysThroughDeliveriesAndARestartUntilReleased() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        defer { upstream.stop() }
        let down = """
        queue: { retry_min: 1s, retry_max: 2s }
        default: { host: 127.0.0.1, port: 9, tls: none }
        """
        let up = """
        queue: { retry_min: 1s, retry_max: 2s }
        default: { host: 127.0.0.1, port: \(upstream.port), tls: none }
        """
        let relay = try RelayProcess(configBody: down)
        try relay.start()
        defer { relay.stop() }
        let queue = { (arguments: [String]) throws -> ToolRun in
            try ToolRun.run(RelayProcess.binaryPath, ["queue"] + arguments + ["--config", relay.configPath], timeout: 30)
        }
        let client = try RawSMTPClient(port: relay.port)
        _ = client.readReply()
        client.send("EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        _ = client.readReplies(4)
        client.send("Subject: held one\r\n\r\nx\r\n.\r\n")
        let id = String(client.readReply().split(separator: " ").last ?? "")
        #expect(eventually(timeout: 10) { (try? queue(["hold", String(id.prefix(10))]))?.status == 0 })
        let listed = try queue(["list"]).output
        #expect(listed.contains(" held "), "\(listed)")

        // The route comes back: other mail flows, the held message does not.
        try relay.writeConfig(body: up)
        #expect(try ToolRun.run(RelayProcess.binaryPath, ["reload", "--config", relay.configPath]).status == 0)
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "a@example.com", to: ["c@example.com"],
                                               data: "Subject: flowing\r\n\r\nx\r\n")
        #expect(upstream.waitForMessages(1).first?.content.contains("Subject: flowing") == true)
        _ = try queue(["flush"])
        #expect(upstream.received().count == 1)

        // A restart keeps the hold (it is in the spool's state file).
        relay.stop()
        try relay.start()
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "a@example.com", to: ["d@example.com"],
                                               data: "Subject: after restart\r\n\r\nx\r\n")
        #expect(upstream.waitForMessages(2).count == 2)
        #expect(!upstream.received().contains { $0.content.contains("Subject: held one") })

        let release = try queue(["release", id])
        #expect(release.status == 0 && release.output.contains("released"), "\(release.output)")
        #expect(upstream.waitForMessages(3).contains { $0.content.contains("Subject: held one") })
    }
}
