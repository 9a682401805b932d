import Foundation
import Testing
@testable import SmarthostCore

/// Selecting messages the way operators do: id prefixes, --org/--route/--older-than; the
/// qshape-like summary; and text from outside never reaching the terminal raw.
@Suite struct QueueSelectionTests {
    private let ids = ["1k1aaaaaaaa000aaaa", "1k1aaaabbbb000bbbb", "1k1ccccccccc00cccc"].map { SpoolID($0)! }

    @Test func aPrefixResolvesWhenItIsUnambiguous() {
        #expect(QueueSelector.resolve("1k1cc", among: ids) == .success(ids[2]))
        #expect(QueueSelector.resolve(ids[0].rawValue, among: []) == .success(ids[0]))
        #expect(QueueSelector.resolve("1k1aaaa", among: ids) == .failure(.ambiguous("1k1aaaa", [ids[0], ids[1]])))
        #expect(QueueSelector.resolve("1k1z", among: ids) == .failure(.noMatch("1k1z")))
        #expect(QueueSelector.resolve("1k1", among: ids) == .failure(.tooShort("1k1")))
        #expect("\(QueueSelector.PrefixError.ambiguous("1k1a", [ids[0], ids[1]]))" == "1k1a is ambiguous: \(ids[0]), \(ids[1])")
    }

    @Test func selectorsMatchOrgRouteAndAge() {
        var envelope = SpoolTestData.envelope(ids[0])
        envelope.org = "acme"
        envelope.route = "smtp.gmail.com:587"
        envelope.receivedAt = 1_000
        #expect(QueueSelector(org: "acme").matches(envelope, now: 1_000))
        #expect(!QueueSelector(org: "-").matches(envelope, now: 1_000))
        #expect(QueueSelector(route: "smtp.gmail.com:587", olderThanSeconds: 3600).matches(envelope, now: 4_600))
        #expect(!QueueSelector(olderThanSeconds: 3600).matches(envelope, now: 4_599))
        #expect(QueueSelector.seconds("2h") == 7200 && QueueSelector.seconds("90") == 90 && QueueSelector.seconds("x") == nil)
        envelope.org = nil
        #expect(QueueSelector(org: "-").matches(envelope, now: 0))
    }

    @Test func summaryCountsPerOrgAndRouteByAge() {
        let now: Int64 = 100_000
        var envelopes: [SpoolEnvelope] = []
        for (index, (org, age)) in [("acme", 60), ("acme", 700), ("globex", 90_000), (nil, 10)].enumerated() {
            var envelope = SpoolTestData.envelope(SpoolID("1k1aaaaaaaa000aaa\(index)")!)
            envelope.org = org
            envelope.route = org == nil ? "smtp.host.example:587" : "smtp.\(org!).example:465"
            envelope.receivedAt = now - Int64(age)
            envelopes.append(envelope)
        }
        let rows = QueueSummary.rows(envelopes, now: now)
        #expect(rows.map(\.org) == ["TOTAL", "acme", "-", "globex"])
        #expect(rows[0].total == 4 && rows[0].oldestSeconds == 90_000)
        #expect(rows[1].buckets.prefix(3) == [1, 0, 1])   // 1 min, 11 min
        #expect(rows[3].buckets.last == 1)                // 25 h: older than 1280 min
        let text = QueueSummary.text(rows)
        #expect(text.hasPrefix("ORG     ROUTE  "))
        #expect(text.contains("TOTAL") && text.contains("smtp.acme.example:465"))
        #expect(QueueSummary.json(rows).contains("\"org\": \"globex\", \"route\": \"smtp.globex.example:465\", \"total\": 1"))
    }

    /// An org header, a sender or an upstream's reply may carry escape sequences: ESC ]0;…
    /// would retitle the operator's terminal, a C1 CSI (U+009B) move its cursor.
    @Test func textFromOutsideIsEscapedInListAndShow() {
        var envelope = SpoolTestData.envelope(ids[0])
        envelope.org = "evil\u{1B}]0;owned\u{07}"
        envelope.sender = "a\u{9B}2J@example.com"
        envelope.lastError = "451 \u{1B}[31mred"
        let row = QueueReport.row(envelope, area: .queue, now: envelope.receivedAt)
        #expect(!row.joined().unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B || $0.value == 0x07 })
        #expect(row.contains("evil\\x1b]0;owned\\x07"))
        let shown = QueueReport.show(envelope, message: Array("Subject: \u{1B}[2Jx\r\n\r\nbody".utf8), now: 0)
        #expect(!shown.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B })
    }
}
