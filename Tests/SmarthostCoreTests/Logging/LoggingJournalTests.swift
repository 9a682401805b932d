import Foundation
import Logging
import Testing
@testable import SmarthostCore

/// The journald side of logging: which destination is chosen, how an event becomes journal
/// fields, and (where a private mount namespace is possible) a real relay writing structured
/// records to a fake journal socket.
@Suite struct LoggingJournalFieldsTests {
    @Test func deliveryOutcomeMapsToWellKnownFields() {
        let fields = JournalFields.make(level: .error, message: "failed", metadata: [
            "id": "0LZ3Q0-ab12", "org": "acme", "layer": "org", "route": "smtp.acme.example:587",
            "attempts": "3", "delay": "4m", "reply": "550 5.1.1 <x@example.com>: no such user",
        ])
        let byName = Dictionary(fields.map { ($0.name, $0.value) }) { a, _ in a }
        #expect(byName["PRIORITY"] == "3")
        #expect(byName["QUEUE_ID"] == "0LZ3Q0-ab12")
        #expect(byName["ORG"] == "acme")
        #expect(byName["LAYER"] == "org")
        #expect(byName["ROUTE"] == "smtp.acme.example:587")
        #expect(byName["UPSTREAM"] == "smtp.acme.example:587", "an outcome's route is the upstream used")
        #expect(byName["DSN"] == "5.1.1")
        #expect(byName["SMARTHOST_REPLY"] == "550 5.1.1 <x@example.com>: no such user")
        #expect(byName["SMARTHOST_ATTEMPTS"] == "3")
        #expect(byName["SYSLOG_IDENTIFIER"] == "smarthost")
        #expect(byName["SMARTHOST_EVENT"] == "failed")
        #expect(byName["MESSAGE"] == "failed attempts=3 delay=4m id=0LZ3Q0-ab12 layer=org org=acme "
            + "reply=\"550 5.1.1 <x@example.com>: no such user\" route=smtp.acme.example:587")
        #expect(fields.first?.name == "MESSAGE")
    }

    @Test func inboundRefusalMapsToStructuredFields() {
        let refusal = InboundRefusal(
            command: "RCPT", reply: SMTPReply(452, "4.5.3", "Error: too many recipients"),
            sender: MailPath(localPart: "a", domain: "acme.example"), recipient: MailPath(localPart: "r", domain: "example.com"),
            helo: "app.local")
        let fields = JournalFields.make(level: .notice, message: RefusalLog.event,
                                        metadata: RefusalLog.metadata(refusal, client: "192.0.2.7"))
        let byName = Dictionary(fields.map { ($0.name, $0.value) }) { a, _ in a }
        #expect(byName["PRIORITY"] == "5")
        #expect(byName["SMARTHOST_EVENT"] == "refused")
        #expect(byName["SMARTHOST_CLIENT"] == "192.0.2.7")
        #expect(byName["SMARTHOST_COMMAND"] == "RCPT")
        #expect(byName["SMARTHOST_CODE"] == "452")
        #expect(byName["SMARTHOST_ENHANCED"] == "4.5.3")
        #expect(byName["DSN"] == "4.5.3")
        #expect(byName["SMARTHOST_FROM"] == "<a@acme.example>")
        #expect(byName["SMARTHOST_TO"] == "<r@example.com>")
        #expect(byName["SMARTHOST_HELO"] == "app.local")
        #expect(byName["MESSAGE"] == "refused client=192.0.2.7 code=452 command=RCPT enhanced=4.5.3 from=<a@acme.example> "
            + "helo=app.local reply=\"452 4.5.3 Error: too many recipients\" to=<r@example.com>")
    }

    @Test func acceptedEventHasNoUpstreamOrDsn() {
        let fields = JournalFields.make(level: .info, message: "accepted", metadata: [
            "id": "q1", "org": "-", "layer": "host", "route": "smtp.office365.com:587", "from": "<a@b>",
        ])
        let names = fields.map(\.name)
        #expect(!names.contains("UPSTREAM") && !names.contains("DSN"))
        #expect(names.contains("SMARTHOST_FROM") && names.contains("QUEUE_ID"))
        #expect(fields.first { $0.name == "PRIORITY" }?.value == "6")
    }

    @Test func deferredReasonCarriesTheDsnAndAnExplicitUpstreamWins() {
        let fields = JournalFields.make(level: .warning, message: "deferred", metadata: [
            "id": "q2", "attempts": "1", "route": "r:25", "upstream": "mx1.example:25",
            "reason": "upstream said 451 4.7.1 greylisted",
        ])
        let byName = Dictionary(fields.map { ($0.name, $0.value) }) { a, _ in a }
        #expect(byName["UPSTREAM"] == "mx1.example:25")
        #expect(fields.filter { $0.name == "UPSTREAM" }.count == 1)
        #expect(byName["DSN"] == "4.7.1")
        #expect(byName["PRIORITY"] == "4")
    }

    @Test func fieldNamesAreValidJournalNames() {
        #expect(JournalFields.fieldName("retry_in") == "RETRY_IN")
        #expect(JournalFields.fieldName("possible-duplicate") == "POSSIBLE_DUPLICATE")
        #expect(JournalFields.fieldName("_trusted") == "TRUSTED", "a leading _ is journald's own")
        #expect(JournalFields.fieldName("ünï") == "KEY" || !JournalFields.fieldName("ünï").hasPrefix("_"))
        #expect(JournalFields.fieldName(String(repeating: "a", count: 100)).count == 54)
    }

    @Test func enhancedStatusCodes() {
        #expect(JournalFields.enhancedStatusCode(in: "250 2.0.0 OK: queued as 12") == "2.0.0")
        #expect(JournalFields.enhancedStatusCode(in: "535-5.7.8 Username and Password not accepted") == "5.7.8")
        #expect(JournalFields.enhancedStatusCode(in: "421 Service not available") == nil)
        #expect(JournalFields.enhancedStatusCode(in: "connection refused to 10.0.0.1") == nil)
        #expect(JournalFields.enhancedStatusCode(in: "550 5.1.10 unknown") == "5.1.10")
    }

    @Test func journaldOnlyWhenJournalStreamIsOurStderr() {
        let stderr = LogDestination.FileIdentity(device: 23, inode: 4711)
        #expect(LogDestination.select(journalStream: "23:4711", standardError: stderr) == .journald)
        #expect(LogDestination.select(journalStream: "23:4712", standardError: stderr) == .lines, "stderr redirected")
        #expect(LogDestination.select(journalStream: nil, standardError: stderr) == .lines)
        #expect(LogDestination.select(journalStream: "garbage", standardError: stderr) == .lines)
        #expect(LogDestination.select(journalStream: "23:4711", standardError: nil) == .lines)
    }

    @Test func identityOfARealFileMatchesFstat() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sh-ident-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let identity = try #require(LogDestination.identity(of: fd))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(identity.inode == (attributes[.systemFileNumber] as? NSNumber)?.uint64Value)
        #expect(LogDestination.select(journalStream: "\(identity.device):\(identity.inode)", standardError: identity) == .journald)
    }
}

@Suite(.serialized) struct LoggingJournaldEndToEndTests {
    static var canUnshare: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
    }

    /// The relay under `$JOURNAL_STREAM` sends structured records (not stderr lines) to the
    /// journal socket; needs root for a private mount namespace with a fake /run.
    @Test(.enabled(if: canUnshare, "needs root and unshare(1) for a private /run"))
    func relaySendsStructuredRecordsToJournald() throws {
        let relay = try RelayProcess()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fake_journal.py").path
        let run = try ToolRun.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/usr/bin/python3", script,
                                                       RelayProcess.binaryPath, relay.configPath])
        try #require(run.status == 0, "fake journal run failed: \(run.output)")
        var records: [[String: String]] = []
        var stderrText = ""
        for line in run.output.split(separator: "\n") {
            if line.hasPrefix("STDERR ") {
                stderrText = (try? JSONDecoder().decode(String.self, from: Data(line.dropFirst(7).utf8))) ?? "?"
            } else if let record = try? JSONDecoder().decode([String: String].self, from: Data(line.utf8)) {
                records.append(record)
            }
        }
        let accepted = try #require(records.first { $0["SMARTHOST_EVENT"] == "accepted" }, "records: \(records)")
        #expect(accepted["PRIORITY"] == "6")
        #expect(accepted["ORG"] == "acme" && accepted["QUEUE_ID"]?.isEmpty == false)
        #expect(accepted["ROUTE"] == "127.0.0.1:9" && accepted["LAYER"] != nil)
        #expect(accepted["MESSAGE"]?.hasPrefix("accepted ") == true)
        #expect(accepted["SYSLOG_IDENTIFIER"] == "smarthost")
        let deferred = try #require(records.first { $0["SMARTHOST_EVENT"] == "deferred" })
        #expect(deferred["QUEUE_ID"] == accepted["QUEUE_ID"])
        #expect(deferred["UPSTREAM"] == "127.0.0.1:9" && deferred["PRIORITY"] == "4")
        let refused = try #require(records.first { $0["SMARTHOST_EVENT"] == "refused" }, "records: \(records)")
        #expect(refused["SMARTHOST_COMMAND"] == "RCPT" && refused["SMARTHOST_CODE"] == "503" && refused["DSN"] == "5.5.1")
        #expect(refused["SMARTHOST_CLIENT"] == "127.0.0.1" && refused["SMARTHOST_TO"] == "<early@example.com>")
        #expect(records.contains { $0["SMARTHOST_EVENT"] == "stopped" })
        #expect(stderrText.isEmpty, "nothing on stderr when journald takes the records: \(stderrText)")
    }
}
