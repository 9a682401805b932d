import Testing
@testable import SmarthostCore

@Suite struct MetricsRequestTests {
    private func parse(_ text: String) -> MetricsRequest { MetricsRequest.parse(Array(text.utf8)) }

    @Test func getAndHeadOfMetricsAreServed() {
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .metrics(headOnly: false))
        #expect(parse("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n") == .metrics(headOnly: true))
        #expect(parse("GET /metrics HTTP/1.1\n\n") == .metrics(headOnly: false))
    }

    @Test func anythingElseGetsItsStatus() {
        #expect(parse("GET / HTTP/1.1\r\n\r\n") == .refused(status: 404, reason: "Not Found"))
        #expect(parse("POST /metrics HTTP/1.1\r\n\r\n") == .refused(status: 405, reason: "Method Not Allowed"))
        #expect(parse("GARBAGE\r\n\r\n") == .refused(status: 400, reason: "Bad Request"))
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
    }

    /// At and past the header limit: a client that never ends its headers is cut off.
    @Test func headersAreBounded() {
        let filler = String(repeating: "a", count: MetricsRequest.maximumHeaderBytes)
        #expect(parse("GET /metrics HTTP/1.1\r\nX: " + filler) == .refused(status: 431, reason: "Request Header Fields Too Large"))
        let fits = "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: MetricsRequest.maximumHeaderBytes - 31) + "\r\n\r\n"
        #expect(fits.utf8.count <= MetricsRequest.maximumHeaderBytes)
        #expect(parse(fits) == .metrics(headOnly: false))
    }

    @Test func responsesCloseTheConnectionAndCountTheirBody() {
        let text = String(decoding: MetricsRequest.response(status: 200, reason: "OK", body: Array("abc".utf8)), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Content-Length: 3\r\n") && text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\nabc"))
        let head = MetricsRequest.response(status: 200, reason: "OK", body: Array("abc".utf8), headOnly: true)
        #expect(!String(decoding: head, as: UTF8.self).hasSuffix("abc"))
    }
}
