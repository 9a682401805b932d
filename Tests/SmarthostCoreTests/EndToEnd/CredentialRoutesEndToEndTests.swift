import Foundation
import Testing
@testable import SmarthostCore

/// Issue 19 item 1 through a real relay: two orgs reach the same upstream host with the same
/// username (`apikey`, as SendGrid has it) and each its own key. The upstream
/// (`test_upstream.py --accounts`) records which password each session authenticated with and
/// which messages went in that session, so what is asserted is the bytes at the upstream:
/// every message of an org left in a session authenticated with that org's key, and when the
/// upstream revokes one key, only that org's mail waits.
@Suite(.serialized) struct CredentialRoutesEndToEndTests {
    static let certificates = TestCertificates.shared
    static let keyA = "SG.key-of-org-a-0123456789"
    static let keyB = "SG.key-of-org-b-9876543210"

    static func config(upstream: UpstreamProcess) -> String {
        func org(_ id: String, key: String) -> String {
            """
              \(id):
                use: custom
                senders: ["*@\(id).example"]
            \(DeliveryRoutesEndToEndTests.routeYAML(port: upstream.port, tls: "starttls", user: "apikey", password: key,
                                                    from: nil, fromName: nil, indent: "    "))
            """
        }
        // retry_min is long: a message held behind a route marked down stays held for the
        // whole test, so "A's mail still goes out" cannot be a retry that came round.
        return """
        queue: { retry_min: 10m, retry_max: 1h, max_age: 1d }
        default:
          host: 127.0.0.1
          port: 9
          tls: none
        host:
          use: default
        orgs:
        \(org("a", key: keyA))
        \(org("b", key: keyB))
        """
    }

    static func send(_ relay: RelayProcess, org: String, subject: String) throws {
        let replies = try TenancyEndToEndTests.send(.tcp(port: relay.port, source: nil), from: "app@\(org).example",
                                                    org: org, subject: subject)
        #expect(replies["DATA"]?.hasPrefix("250") == true, "\(subject): \(replies)")
    }

    static func received(_ upstream: UpstreamProcess, _ subject: String) -> UpstreamProcess.Received? {
        upstream.received().first { $0.content.contains("Subject: \(subject)\r\n") || $0.content.contains("Subject: \(subject)\n") }
    }

    /// The relay has said QUIT on every connection it opened (idle ones after 5 s): the next
    /// message needs a new session, and so a new AUTH.
    static func allSessionsClosed(_ upstream: UpstreamProcess) -> Bool {
        // aiosmtpd says "open" again after STARTTLS: sessions are counted by number.
        let lines = upstream.logLines("sessions.log")
        let opened = Set(lines.filter { $0.hasPrefix("open ") }.map { $0.dropFirst(5) })
        let closed = Set(lines.filter { $0.hasPrefix("close ") }.map { $0.dropFirst(6) })
        return !opened.isEmpty && closed == opened
    }

    @Test func eachOrgsMailLeavesInASessionAuthenticatedWithItsOwnKey() throws {
        let accounts = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-accounts-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: accounts) }
        try "apikey:\(Self.keyA)\napikey:\(Self.keyB)\n".write(to: accounts, atomically: true, encoding: .utf8)
        let upstream = try UpstreamProcess(mode: .starttls, certificate: (Self.certificates.localhost.certificate,
                                                                          Self.certificates.localhost.key),
                                           extra: ["--accounts", accounts.path])
        let relay = try RelayProcess(configBody: Self.config(upstream: upstream))
        try relay.start()
        defer { relay.stop() }

        // Alternating, each after the previous one arrived: a pooled idle connection is there
        // for the next message, whichever org's it is.
        let subjects = ["a-1", "b-1", "a-2", "b-2", "a-3", "b-3"]
        for (index, subject) in subjects.enumerated() {
            try Self.send(relay, org: String(subject.prefix(1)), subject: subject)
            #expect(upstream.waitForMessages(index + 1).count == index + 1, "\(subject) did not arrive: \(relay.log)")
        }
        var sessions: [Int: Set<String>] = [:]
        for subject in subjects {
            let message = try #require(Self.received(upstream, subject), "\(subject) not at the upstream")
            let expected = subject.hasPrefix("a") ? Self.keyA : Self.keyB
            #expect(message.authUser == "apikey")
            #expect(message.authPassword == expected, "\(subject) went in a session authenticated with the other org's key")
            if let session = message.session { sessions[session, default: []].insert(String(subject.prefix(1))) }
        }
        #expect(sessions.values.allSatisfy { $0.count == 1 }, "a session carried both orgs' mail: \(sessions)")
        // One org's sessions are pooled still: three messages each, fewer sessions than messages.
        #expect(sessions.count < subjects.count, "no connection was reused: \(sessions)")

        // B's key is revoked at the upstream; once the relay has closed its sessions, B's next
        // AUTH gets 535 and B's route is down. A's mail keeps flowing.
        try "apikey:\(Self.keyA)\n".write(to: accounts, atomically: true, encoding: .utf8)
        #expect(eventually(timeout: 30) { Self.allSessionsClosed(upstream) }, "sessions still open: \(upstream.logLines("sessions.log"))")
        try Self.send(relay, org: "b", subject: "b-revoked")
        #expect(eventually { relay.log.contains("535") }, "B's AUTH was not refused: \(relay.log)")
        try Self.send(relay, org: "a", subject: "a-after")
        #expect(eventually { Self.received(upstream, "a-after") != nil }, "A's mail was held behind B's revoked key: \(relay.log)")
        #expect(Self.received(upstream, "a-after")?.authPassword == Self.keyA)
        #expect(Self.received(upstream, "b-revoked") == nil)
        let queued = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(queued.count == 1, "only b-revoked waits: \(queued)")

        // `status` shows one route down, B's, told apart from A's by its org; no key anywhere.
        let status = try ToolRun.run(RelayProcess.binaryPath, ["status", "--config", relay.configPath], timeout: 30)
        let downLines = status.output.split(separator: "\n").filter { $0.contains("localhost:\(upstream.port)") && $0.contains("next try") }
        #expect(status.output.contains("routes down:"), "\(status.output)")
        #expect(downLines.count == 1 && downLines.first?.contains("(org b)") == true, "\(status.output)")
        let json = try ToolRun.run(RelayProcess.binaryPath, ["status", "--json", "--config", relay.configPath], timeout: 30)
        #expect(json.output.contains("\"orgs\": [\"b\"]") && !json.output.contains("\"orgs\": [\"a\"]"), "\(json.output)")
        for text in [relay.allLogs, status.output, json.output] {
            #expect(!text.contains(Self.keyA) && !text.contains(Self.keyB), "a key reached a log or status")
        }
    }
}
