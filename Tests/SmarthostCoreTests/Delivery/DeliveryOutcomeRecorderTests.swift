import Foundation
import Glibc
import Logging
import Testing
@testable import SmarthostCore

/// The recorder: what it writes to the spool, what it reports back (a notice queued, the
/// record written — in that order, each once), the configuration each record carries, and
/// the driver holding spool reads back while 256 records are not written yet.
@Suite(.serialized) struct DeliveryOutcomeRecorderTests {
    /// Reports as words, in the order the loop heard them.
    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var words: [String] = []
        private(set) var notices: [SpoolEnvelope] = []

        func add(_ report: DeliveryOutcomeRecorder.Report, about id: SpoolID) {
            lock.withLock {
                switch report {
                case .recorded: words.append("recorded \(id)")
                case .noticeQueued(let envelope, _):
                    words.append("notice \(id)")
                    notices.append(envelope)
                }
            }
        }

        var all: [String] { lock.withLock { words } }
        var queuedNotices: [SpoolEnvelope] { lock.withLock { notices } }
    }

    struct Rig {
        let directory = SpoolTestDirectory()
        let spool: Spool
        let runner: ControlLoopThread
        let recorder: DeliveryOutcomeRecorder
        let reports = Reports()

        init() throws {
            spool = try Spool(root: directory.root)
            runner = try ControlLoopThread()
            recorder = DeliveryOutcomeRecorder(loop: runner.loop, spool: spool,
                                               logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            runner.start()
        }

        func store() throws -> SpoolEnvelope {
            let id = try SpoolTestData.store(spool, SpoolTestData.message(lines: 2)) { id in
                SpoolEnvelope(id: id, receivedAt: Int64(Date().timeIntervalSince1970), sender: "app@example.com",
                              recipients: ["gone@example.com"], heloName: "localhost", clientAddress: "127.0.0.1")
            }.get()
            return try spool.envelope(id)
        }

        func record(_ kind: DeliveryRecord.Kind, _ envelope: SpoolEnvelope, config: String = DeliveryDriverRig.config) throws {
            let config = try ConfigTestSupport.parse(config)
            let dead = kind == .failed
            let decision = DeliveryDecision(disposition: dead ? .deadLetter : .remove,
                                            delivered: dead ? [] : envelope.recipients,
                                            refused: dead ? ["gone@example.com": "550 5.1.1 no such user"] : [:],
                                            reason: dead ? "RCPT TO rejected: 550 5.1.1 no such user" : "",
                                            possibleDuplicate: false)
            let record = DeliveryRecord(kind: kind, envelope: envelope, decision: decision, route: "127.0.0.1:2525",
                                        host: "127.0.0.1:2525", remoteHost: "127.0.0.1", tls: nil, dataReply: nil,
                                        atMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
            let reports = self.reports
            let id = envelope.id
            runner.sync { recorder.record(record, config: config) { reports.add($0, about: id) } }
        }

        func area(of id: SpoolID) -> String {
            if directory.names("queue").contains(where: { $0.hasPrefix("\(id)") }) { return "queue" }
            if directory.names("failed").contains(where: { $0.hasPrefix("\(id)") }) { return "failed" }
            return "gone"
        }

        func finish() {
            runner.stop { [recorder] in recorder.stop() }
            spool.shutdown()
            directory.remove()
        }
    }

    @Test func aDeliveredRecordIsWrittenThenReportedOnce() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let envelope = try rig.store()
        try rig.record(.delivered, envelope)
        #expect(eventually(timeout: 10) { rig.reports.all == ["recorded \(envelope.id)"] }, "\(rig.reports.all)")
        #expect(rig.area(of: envelope.id) == "gone")
        Thread.sleep(forTimeInterval: 0.1)
        #expect(rig.reports.all.count == 1, "reported twice: \(rig.reports.all)")
    }

    @Test func aDeadLetterReportsItsNoticeBeforeItIsRecorded() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let envelope = try rig.store()
        try rig.record(.failed, envelope)
        #expect(eventually(timeout: 10) { rig.reports.all.count == 2 }, "\(rig.reports.all)")
        #expect(rig.reports.all == ["notice \(envelope.id)", "recorded \(envelope.id)"])
        #expect(rig.area(of: envelope.id) == "failed")
        let notice = try #require(rig.reports.queuedNotices.first)
        #expect(notice.recipients == ["app@example.com"] && notice.sender == "")
        #expect(rig.area(of: notice.id) == "queue", "the notice reported is not durable in queue/")
    }

    @Test func eachRecordFollowsTheConfigurationItWasDecidedUnder() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let quiet = try rig.store()
        let copied = try rig.store()
        let told = try rig.store()
        try rig.record(.failed, quiet, config: "notices: { bounce_sender: false }\n" + DeliveryDriverRig.config)
        try rig.record(.failed, copied, config: "notices: { bounce_sender: false, copy_to: ops1@example.com }\n"
            + DeliveryDriverRig.config)
        try rig.record(.failed, told, config: "notices: { copy_to: ops2@example.com }\n" + DeliveryDriverRig.config)
        #expect(eventually(timeout: 10) { rig.reports.all.filter { $0.hasPrefix("recorded") }.count == 3 }, "\(rig.reports.all)")
        #expect(!rig.reports.all.contains("notice \(quiet.id)"), "a notice under bounce_sender: false")
        #expect(rig.reports.queuedNotices.map(\.recipients) == [["ops1@example.com"], ["app@example.com", "ops2@example.com"]])
        #expect([quiet, copied, told].allSatisfy { rig.area(of: $0.id) == "failed" })
    }

    /// The records' spool updates wait behind a message whose file the test holds locked;
    /// the driver counts them and, at `backlogLimit`, holds the next spool read (and lets it
    /// go once the recorder catches up). Below the limit a read goes at once.
    @Test func spoolReadsAreHeldWhile256RecordsAreOutstanding() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        rig.factory.autopilot = rig.runner.loop
        let blocker = try rig.store(tag: "blocker")
        let fd = open(rig.spool.path(.queue, blocker.id), O_RDONLY)
        #expect(fd >= 0 && flock(fd, LOCK_EX) == 0)
        var unlocked = false
        func unlock() {
            guard !unlocked else { return }
            unlocked = true
            close(fd)
        }
        defer { unlock() }
        let limit = DeliveryOutcomeRecorder.backlogLimit
        rig.sync { rig.driver.handle(.queued(blocker, content: try? rig.content(blocker.id))) }
        // In memory only (not in the spool): delivered, their records wait behind the blocker.
        let ids = SpoolIDGenerator()
        for _ in 0..<(limit - 2) {
            var envelope = blocker
            envelope.id = ids.next()
            rig.sync { rig.driver.handle(.queued(envelope, content: Array("Subject: x\r\n\r\nx\r\n".utf8))) }
        }
        #expect(eventually(timeout: 30) { rig.sync { rig.driver.backlog.records } == limit - 1 })

        // One below the limit: the read goes, the message is sent, the backlog is at the limit.
        let below = try rig.store(tag: "below")
        rig.sync { rig.driver.handle(.queued(below, content: nil)) }
        #expect(eventually(timeout: 10) { rig.sync { rig.driver.backlog.records } == limit }, "\(rig.sync { rig.driver.backlog })")
        #expect(rig.sync { rig.driver.backlog.readsHeld } == 0)

        // At the limit: the next read waits on the loop, nothing is sent.
        let held = try rig.store(tag: "held")
        rig.sync { rig.driver.handle(.queued(held, content: nil)) }
        #expect(eventually(timeout: 10) { rig.sync { rig.driver.backlog.readsHeld } == 1 })
        #expect(!rig.sync { rig.factory.made.flatMap { $0.sent.map(\.id) } }.contains(held.id))

        unlock()
        #expect(eventually(timeout: 30) { rig.sync { rig.factory.made.flatMap { $0.sent.map(\.id) } }.contains(held.id) },
                "the held read never went")
        #expect(eventually(timeout: 30) { rig.sync { rig.driver.backlog.records } == 0 })
        #expect(rig.sync { rig.driver.backlog.readsHeld } == 0)
    }
}
