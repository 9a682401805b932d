import Foundation
import Testing
@testable import SmarthostCore

/// The notice's side of the spool: a notice is committed like any message, and the delay
/// warning mark survives deferrals and a reload of the envelope (a restart).
@Suite struct NoticeSpoolTests {
    @Test func delayWarnedMarkSurvivesDeferralsAndRereading() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        #expect(try spool.envelope(id).delayWarned == false)
        try spool.markDelayWarned(id)
        try spool.markDeferred(id, attempts: 3, nextAttemptAt: 30, lastError: "450 4.2.0 busy", doneRecipients: [])
        let again = try Spool(root: dir.root)
        let envelope = try again.envelope(id)
        #expect(envelope.delayWarned)
        #expect(envelope.attempts == 3)
    }

    @Test func aNoticeIsCommittedAsAQueuedMessageFromTheNullSender() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        let originalID = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        var original = try spool.envelope(originalID)
        original.org = "acme"
        original.refusedRecipients = [original.recipients[0]: "550 5.1.1 no such user"]
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal)
        let plan = try #require(NoticePlan.failure(
            for: original, reason: "recipient refused", remoteMTA: "smtp.example.com", config: config,
            content: try spool.readMessage(originalID), nowUnixSeconds: 1_763_847_621, token: "t"))
        let (envelope, content) = try NoticeSpooler.commit(plan, resolvedFrom: original, config: config, spool: spool)
        #expect(envelope.sender == "" && envelope.recipients == [original.sender] && envelope.org == "acme")
        let stored = try spool.envelope(envelope.id)
        #expect(stored.sender == "" && stored.recipients == [original.sender] && stored.org == "acme")
        #expect(try spool.readMessage(envelope.id) == content)
        #expect(dir.names("queue").contains(envelope.id.rawValue))
    }
}
