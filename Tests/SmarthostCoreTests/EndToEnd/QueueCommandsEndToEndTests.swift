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
