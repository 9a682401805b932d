import Testing
@testable import SmarthostCore

@Suite struct ControlRouteDownTests {
    @Test func routesTravelAsWordsWhateverTheirErrorSays() {
        let routes = [
            ControlRouteDown(upstream: "smtp.acme.example:465", downSeconds: 720, retryInSeconds: 30,
                             error: "connect: Connection refused, 100% sure"),
            ControlRouteDown(upstream: "[::1]:25", downSeconds: 1, retryInSeconds: 0, error: "TLS: é\u{1B}[31m"),
        ]
        let words = ControlRouteDown.words(routes)
        #expect(!words.contains("\u{1B}"))
        #expect(words.split(separator: " ").count == 2)
        #expect(ControlRouteDown.parse(words) == routes)
        #expect(ControlRouteDown.parse(ControlRouteDown.words([])) == [])
        // Through the one-line control reply and back.
        #expect(ControlRouteDown.parse(ControlReply.parse(ControlReply.ok(words).line.dropLast())!.text) == routes)
    }

    /// Two routes to the same hosts with each org's own credential: the orgs travel with the
    /// word, `status` shows them, and a queued message is matched to the route of its org.
    @Test func routesOfOneNameAreToldApartByTheirOrgs() {
        let b = ControlRouteDown(upstream: "smtp.sendgrid.example:587", downSeconds: 60, retryInSeconds: 540,
                                 error: "AUTH rejected: 535 5.7.8 bad key", orgs: ["b", "-"])
        let slowed = ControlRouteSlowed(route: "smtp.sendgrid.example:587", messagesPerSecond: 1, connections: 1, orgs: ["a"])
        let text = ControlRouteSlowed.routesReply(down: [b], slowed: [slowed])
        #expect(ControlRouteDown.parse(text) == [b])
        #expect(ControlRouteSlowed.parse(text) == [slowed])
        #expect(b.label == "smtp.sendgrid.example:587 (orgs b, no org)")
        #expect(slowed.label == "smtp.sendgrid.example:587 (org a)")
        #expect(b.holds(route: "smtp.sendgrid.example:587", org: "b") && b.holds(route: "smtp.sendgrid.example:587", org: nil))
        #expect(!b.holds(route: "smtp.sendgrid.example:587", org: "a"))
        let report = StatusReport.text(version: "1", status: ControlStatus(queued: 1, pid: 7), routes: [b], slowed: [slowed],
                                       summary: [], deadLetters: 0, quarantined: 0)
        #expect(report.contains("smtp.sendgrid.example:587 (orgs b, no org) for 1m"), "\(report)")
        #expect(report.contains("smtp.sendgrid.example:587 (org a): "), "\(report)")
    }
}
