import Testing
@testable import SmarthostCore

@Suite struct ControlRouteSlowedTests {
    let down = ControlRouteDown(upstream: "smtp.acme.example:465", downSeconds: 720, retryInSeconds: 30,
                                error: "connect: Connection refused")
    let slowed = [
        ControlRouteSlowed(route: "smtp1.example:587,smtp2.example:587", messagesPerSecond: 0.25, connections: 1),
        ControlRouteSlowed(route: "[::1]:25", messagesPerSecond: nil, connections: 2),
    ]

    @Test func slowedRoutesTravelBesideDownRoutesInOneRoutesReply() {
        let text = ControlRouteSlowed.routesReply(down: [down], slowed: slowed)
        let back = ControlReply.parse(ControlReply.ok(text).line.dropLast())!.text
        #expect(ControlRouteSlowed.parse(back) == slowed)
        // A client that predates `slowed=` words reads the down routes alone, as before.
        #expect(ControlRouteDown.parse(back) == [down])
        #expect(ControlRouteSlowed.parse(ControlRouteDown.words([down])) == [])
    }

    @Test func nothingDownOrSlowedIsStillNone() {
        #expect(ControlRouteSlowed.routesReply(down: [], slowed: []) == "none")
        #expect(ControlRouteSlowed.routesReply(down: [], slowed: []) == ControlRouteDown.words([]))
        #expect(ControlRouteDown.parse(ControlRouteSlowed.routesReply(down: [], slowed: slowed)) == [])
    }

    @Test func malformedWordsAreSkipped() {
        #expect(ControlRouteSlowed.parse("slowed=a:25,fast,1 slowed=a:25,1 slowed=a:25,0,2 slowed=a:25,-1,2 slowed=a:25,nan,2") == [])
        #expect(ControlRouteSlowed.parse("slowed=a:25,0.5,x") == [])
    }

    @Test func paceReadsAsRateAndConnections() {
        #expect(slowed[0].pace == "15/min, 1 connection")
        #expect(slowed[1].pace == "unlimited, 2 connections")
    }

    @Test func statusShowsSlowedRoutesOnlyWhenThereAreAny() {
        let running = ControlStatus(queued: 0, pid: 7)
        let none = StatusReport.text(version: "1", status: running, routes: [], summary: [], deadLetters: 0, quarantined: 0)
        #expect(!none.contains("slowed"))
        let text = StatusReport.text(version: "1", status: running, routes: [], slowed: slowed, summary: [],
                                     deadLetters: 0, quarantined: 0)
        #expect(text.contains("routes slowed by throttling:\n  smtp1.example:587,smtp2.example:587: 15/min, 1 connection\n"))
        let json = StatusReport.json(status: running, routes: [], slowed: slowed, summary: [], deadLetters: 0, quarantined: 0)
        #expect(json.contains(#""routes_slowed": [{"route": "smtp1.example:587,smtp2.example:587", "messages_per_second": 0.25, "connections": 1}, {"route": "[::1]:25", "messages_per_second": null, "connections": 2}]"#))
    }

    @Test func statusCountsSlowedRoutesAsAKeyOlderClientsSkip() {
        var status = ControlStatus(queued: 1, pid: 7)
        status.routesSlowed = 2
        #expect(status.description.contains("routes_slowed=2"))
        #expect(ControlStatus(parsing: status.description)?.routesSlowed == 2)
        #expect(status.summary.hasSuffix("; 2 routes slowed by throttling"))
    }
}
