import Foundation
import Testing
@testable import SmarthostCore

@Suite struct ControlQueueReportTests {
    /// Three queued messages (acme, globex, host level), one deferred, one dead letter.
    private func filledSpool(_ directory: SpoolTestDirectory) throws -> (Spool, [SpoolID]) {
        let spool = try Spool(root: directory.root, clock: { 1_700_000_600 })
        var ids: [SpoolID] = []
        for org in ["acme", "globex", nil, "acme"] as [String?] {
            let result = try SpoolTestData.store(spool, SpoolTestData.message(tag: org ?? "host")) { id in
                var envelope = SpoolTestData.envelope(id)
                envelope.org = org
                envelope.layer = org == nil ? "host" : "org"
                envelope.route = org == nil ? "smtp.office365.com:587" : "smtp.gmail.com:587"
                return envelope
            }
            ids.append(try result.get())
        }
        try spool.markDeferred(ids[1], attempts: 3, nextAttemptAt: 1_700_000_900,
                               lastError: "connect: Connection refused", doneRecipients: ["a@example.com"])
        try spool.moveToFailed(ids[3], reason: "RCPT TO <b@example.com>: 550 5.1.1 user unknown\r\n(after 2 attempts)")
        return (spool, ids)
    }

    @Test func listPrintsOneLinePerMessageStartingWithItsID() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let (spool, ids) = try filledSpool(directory)
        let now: Int64 = 1_700_000_000 + 3725
        let text = QueueReport.list(try QueueReport.load(spool, area: .queue), area: .queue, now: now)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        for (line, id) in zip(lines, ids.prefix(3)) { #expect(line.hasPrefix(id.rawValue + " ")) }
        #expect(lines[0].contains("1h02m") && lines[0].contains("acme") && lines[0].contains("smtp.gmail.com:587"))
        #expect(lines[1].contains("globex") && lines[1].contains(" 3 ") && lines[1].hasSuffix("connect: Connection refused"))
        #expect(lines[2].contains(" - ") && lines[2].contains("smtp.office365.com:587"))
        // Columns line up: the org column starts at the same offset on every line.
        let offsets = lines.map { $0.distance(from: $0.startIndex, to: $0.range(of: "smtp.")!.lowerBound) }
        #expect(Set(offsets).count == 1)
        let header = QueueReport.list(try QueueReport.load(spool, area: .queue), area: .queue, now: now, header: true)
        #expect(header.hasPrefix("ID "))
    }

    @Test func deadLettersShowTheUpstreamReplyOnOneLine() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let (spool, ids) = try filledSpool(directory)
        let text = QueueReport.list(try QueueReport.load(spool, area: .failed), area: .failed, now: 1_700_000_660)
        #expect(text.hasPrefix(ids[3].rawValue + " "))
        #expect(text.hasSuffix("RCPT TO <b@example.com>: 550 5.1.1 user unknown  (after 2 attempts)\n"))
        #expect(text.contains("1m ago"))
        #expect(text.split(separator: "\n").count == 1)
    }

    @Test func orgFilterAndHostLevel() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let (spool, ids) = try filledSpool(directory)
        #expect(try QueueReport.load(spool, area: .queue, org: "acme").map(\.id) == [ids[0]])
        #expect(try QueueReport.load(spool, area: .queue, org: "-").map(\.id) == [ids[2]])
        #expect(try QueueReport.load(spool, area: .failed, org: "acme").map(\.id) == [ids[3]])
        #expect(try QueueReport.load(spool, area: .queue, org: "initech").isEmpty)
    }

    @Test func showPrintsTheEnvelopeAndOnlyTheHeaders() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let (spool, ids) = try filledSpool(directory)
        let envelope = try spool.envelope(ids[1])
        let text = QueueReport.show(envelope, message: try spool.readMessage(ids[1]), now: 1_700_000_700)
        #expect(text.hasPrefix("id:           \(ids[1])\n"))
        #expect(text.contains("status:       deferred\n"))
        #expect(text.contains("recipient:    <a@example.com> (delivered)\n"))
        #expect(text.contains("recipient:    <b@example.com>\n"))
        #expect(text.contains("next attempt: 2023-11-14 22:28:20 UTC (in 3m)\n"))
        #expect(text.contains("last error:   connect: Connection refused\n"))
        #expect(text.contains("\nSubject: test globex\n"))
        #expect(!text.contains("line 0"))
        #expect(!text.contains("\r"))
        let full = QueueReport.show(envelope, message: try spool.readMessage(ids[1]), now: 1_700_000_700, body: true)
        #expect(full.contains("line 19 globex"))

        let dead = QueueReport.show(try spool.envelope(ids[3]), message: try spool.readMessage(ids[3]), now: 1_700_000_700)
        #expect(dead.contains("status:       dead letter\n"))
        #expect(dead.contains("reason:       RCPT TO <b@example.com>: 550 5.1.1 user unknown  (after 2 attempts)\n"))
    }

    @Test func jsonIsParseableAndComplete() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let (spool, ids) = try filledSpool(directory)
        let text = QueueReport.json(try QueueReport.load(spool, area: .failed), area: .failed)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]
        let object = try #require(parsed?.first)
        #expect(object["id"] as? String == ids[3].rawValue)
        #expect(object["area"] as? String == "failed")
        #expect((object["failure"] as? String)?.contains("\r\n(after 2 attempts)") == true)
        #expect(object["recipients"] as? [String] == ["a@example.com", "b@example.com"])
        #expect(object["last_error"] is NSNull)
        #expect(QueueReport.json([], area: .queue) == "[]\n")
        #expect(QueueReport.string("a\"b\\c\u{1}") == #""a\"b\\c\u0001""#)
    }

    @Test func unitsForColumns() {
        #expect(QueueReport.duration(-5) == "0s")
        #expect(QueueReport.duration(59) == "59s")
        #expect(QueueReport.duration(600) == "10m")
        #expect(QueueReport.duration(3 * 3600 + 5 * 60) == "3h05m")
        #expect(QueueReport.duration(2 * 86_400 + 4 * 3600) == "2d04h")
        #expect(QueueReport.size(812) == "812")
        #expect(QueueReport.size(4300) == "4.2K")
        #expect(QueueReport.size(35 << 20) == "35M")
        #expect(QueueReport.timestamp(0) == "1970-01-01 00:00:00 UTC")
    }
}

/// `smarthost queue retry/delete/flush` when no daemon answers on the control socket.
@Suite struct ControlDirectQueueTests {
    @Test func withoutADaemonTheSpoolIsChangedDirectly() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let spool = try Spool(root: directory.root)
        let client = ControlClient(spool: directory.root)
        #expect(try client.send(.status) == nil)  // nobody listening: fall back

        let direct = DirectQueueControl(spool: spool, clock: { 1_700_000_000 })
        let dead = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        let deferred = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        let doomed = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        try spool.moveToFailed(dead, reason: "550 no")
        try spool.markDeferred(deferred, attempts: 2, nextAttemptAt: 1_800_000_000, lastError: "421 busy",
                               doneRecipients: ["a@example.com"])

        #expect(direct.perform(.flush(dead)).code == .error)
        #expect(direct.perform(.retry(dead)).code == .ok)
        #expect(try spool.envelope(dead).failure == nil)
        #expect(directory.names("failed").isEmpty)

        #expect(direct.perform(.flush(nil)).text.hasPrefix("1 deferred messages are due now"))
        let after = try spool.envelope(deferred)
        #expect(after.nextAttemptAt == 0 && after.attempts == 2 && after.lastError == "421 busy")
        #expect(after.doneRecipients == ["a@example.com"])

        #expect(direct.perform(.delete(doomed)) == .ok("\(doomed) deleted"))
        #expect(direct.perform(.delete(doomed)).code == .notFound)
        #expect(throws: SpoolError.notFound(doomed)) { try spool.envelope(doomed) }

        let status = try #require(ControlStatus(parsing: direct.perform(.status).text))
        #expect(status.queued == 2 && status.deferred == 1 && status.deadLetters == 0 && status.pid == 0)
    }
}
