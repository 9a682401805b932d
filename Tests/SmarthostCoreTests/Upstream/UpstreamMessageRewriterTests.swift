import Testing
@testable import SmarthostCore

@Suite struct UpstreamMessageRewriterTests {
    private static let body = "Hello,\r\nX-Smarthost-Org: not a header here\r\nFrom: neither\r\n\r\n.end\r\n"
    private static let acme = UpstreamFromAddress(address: "alerts@acme.example", displayName: "ACME Robots")

    private func rewrite(_ text: String, from: UpstreamFromAddress? = acme,
                         mode: UpstreamFromRewrite = .fill) -> (String, String?) {
        let result = UpstreamMessageRewriter.rewrite(Array(text.utf8), removingHeader: "X-Smarthost-Org",
                                                     from: from, mode: mode)
        return (String(decoding: result.message, as: UTF8.self), result.removedHeaderValue)
    }

    @Test func fillAddsFromWhenMissingAndRemovesTheOrgHeader() {
        let (out, org) = rewrite("Subject: hi\r\nX-Smarthost-Org: acme\r\nTo: b@x\r\n\r\n" + Self.body)
        #expect(out == "Subject: hi\r\nTo: b@x\r\nFrom: ACME Robots <alerts@acme.example>\r\n\r\n" + Self.body)
        #expect(org == "acme")
    }

    @Test func fillKeepsAnExistingFrom() {
        let message = "from: Someone <s@x>\r\nSubject: hi\r\n\r\n" + Self.body
        let (out, org) = rewrite(message)
        #expect(out == message)
        #expect(org == nil)
    }

    @Test func replaceReplacesEveryFromInPlaceOfTheFirst() {
        let (out, _) = rewrite("Subject: a\r\nFrom: One <1@x>\r\nTo: b@x\r\nFROM: Two\r\n  <2@x>\r\n\r\n" + Self.body,
                               mode: .replace)
        #expect(out == "Subject: a\r\nFrom: ACME Robots <alerts@acme.example>\r\nTo: b@x\r\n\r\n" + Self.body)
    }

    @Test func replaceAddsFromWhenMissing() {
        let (out, _) = rewrite("Subject: a\r\n\r\n" + Self.body, mode: .replace)
        #expect(out == "Subject: a\r\nFrom: ACME Robots <alerts@acme.example>\r\n\r\n" + Self.body)
    }

    @Test func everyInstanceOfTheOrgHeaderGoesFoldedOrNot() {
        let message = "x-smarthost-org:\r\n\tglobex\r\n  corp\r\nSubject: a\r\nX-SMARTHOST-ORG: acme\r\n\r\n" + Self.body
        let (out, org) = rewrite(message, from: nil)
        #expect(out == "Subject: a\r\n\r\n" + Self.body)
        #expect(org == "globex  corp")
    }

    @Test func headerValueUnfoldsAndTrims() {
        let message = Array("Subject: a\r\nX-Smarthost-Org:  acme\r\n  east \r\n\r\nX-Smarthost-Org: body\r\n".utf8)
        #expect(UpstreamMessageRewriter.headerValue(named: "x-smarthost-org", in: message) == "acme  east")
        #expect(UpstreamMessageRewriter.headerValue(named: "Cc", in: message) == nil)
    }

    @Test func nonASCIIDisplayNameIsRFC2047Encoded() {
        let header = UpstreamMessageRewriter.fromHeader(UpstreamFromAddress(address: "a@x", displayName: "expéditeur"))
        #expect(String(decoding: header, as: UTF8.self) == "From: =?UTF-8?B?ZXhww6lkaXRldXI=?= <a@x>\r\n")
    }

    @Test func longNonASCIINameIsSplitIntoFoldedWordsOnCharacterBoundaries() {
        let name = String(repeating: "é", count: 30)   // 60 octets: 22 characters fit in 45
        let text = String(decoding: UpstreamMessageRewriter.fromHeader(UpstreamFromAddress(address: "a@x", displayName: name)),
                          as: UTF8.self)
        let words = text.dropFirst("From: ".count).split(separator: "\r\n ")
        #expect(words.count == 2)
        #expect(words.allSatisfy { $0.hasPrefix("=?UTF-8?B?") && $0.count <= 75 + " <a@x>\r\n".count })
    }

    @Test(arguments: [
        ("ACME Robots", "From: ACME Robots <a@x>\r\n"),
        ("sender mydomain.com", "From: \"sender mydomain.com\" <a@x>\r\n"),
        ("Doe, \"J\" \\ Co", "From: \"Doe, \\\"J\\\" \\\\ Co\" <a@x>\r\n"),
        ("", "From: a@x\r\n"),
        ("Evil\r\nBcc: victim@x", "From: \"EvilBcc: victim@x\" <a@x>\r\n"),
    ])
    func asciiDisplayNames(_ name: String, _ expected: String) {
        let header = UpstreamMessageRewriter.fromHeader(UpstreamFromAddress(address: "a@x", displayName: name))
        #expect(String(decoding: header, as: UTF8.self) == expected)
    }

    @Test func bodyIsUntouchedByteForByte() {
        var body: [UInt8] = Array("line\n\r\n".utf8) + (0...255).map(UInt8.init) + Array("\r\n.\r\n".utf8)
        body += Array("X-Smarthost-Org: acme\r\n".utf8)
        let message = Array("X-Smarthost-Org: acme\r\nSubject: s\r\n\r\n".utf8) + body
        let result = UpstreamMessageRewriter.rewrite(message, removingHeader: "X-Smarthost-Org",
                                                     from: Self.acme, mode: .replace)
        #expect(Array(result.message.suffix(body.count)) == body)
        #expect(result.message.count == body.count + "Subject: s\r\nFrom: ACME Robots <alerts@acme.example>\r\n\r\n".utf8.count)
    }

    @Test func headersWithoutBodyOrFinalLineEnd() {
        let (out, _) = rewrite("Subject: a")
        #expect(out == "Subject: a\r\nFrom: ACME Robots <alerts@acme.example>\r\n")
    }

    @Test func missingSeparatorBeforeBodyIsAdded() {
        let (out, _) = rewrite("Subject: a\r\nnot a header line\r\n")
        #expect(out == "Subject: a\r\nFrom: ACME Robots <alerts@acme.example>\r\n\r\nnot a header line\r\n")
    }

    @Test func bareLFMessagesKeepTheirHeaderBoundary() {
        let (out, org) = rewrite("X-Smarthost-Org: a\nSubject: s\n\nbody\n")
        #expect(out == "Subject: s\nFrom: ACME Robots <alerts@acme.example>\r\n\nbody\n")
        #expect(org == "a")
    }
}
