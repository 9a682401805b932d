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
}
