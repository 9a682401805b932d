import Testing
@testable import SmarthostCore

/// The MIME Graph gets: the SMTP path's message with dot-stuffing undone, `Bcc:` for the
/// envelope recipients the headers do not name, base64 in a text/plain body, the size limit.
@Suite struct GraphRequestTests {
    static let token = Secret(revealed: "tk-secret", origin: "test")

    static func message(_ text: String, to recipients: [String]) -> UpstreamMessage {
        UpstreamMessage(sender: "a@x", recipients: recipients, content: Array(text.utf8))
    }

    @Test func unstuffUndoesTheDataEncoding() {
        #expect(GraphRequest.unstuff(UpstreamDataEncoder.encode(Array("a\r\n.b\r\n..c\r\n".utf8))) == Array("a\r\n.b\r\n..c\r\n".utf8))
        #expect(GraphRequest.unstuff(UpstreamDataEncoder.encode(Array("x\n.y".utf8))) == Array("x\r\n.y\r\n".utf8))
        #expect(GraphRequest.unstuff(UpstreamDataEncoder.encode(Array(".\r\n..\r\n".utf8))) == Array(".\r\n..\r\n".utf8))
    }

    @Test func theRequestIsBase64MIMEWithTheTokenMaskedInTheTranscript() throws {
        let message = Self.message("From: a@x\r\nTo: b@y\r\n\r\nhi\r\n", to: ["b@y"])
        let request = try GraphRequest.sendMail(base: "https://graph.example/", mailbox: "alerts@contoso.example",
                                                token: Self.token, message: message).get()
        #expect(request.url == "https://graph.example/v1.0/users/alerts%40contoso.example/sendMail")
        #expect(request.headers == ["Authorization: Bearer tk-secret", "Content-Type: text/plain"])
        #expect(request.maskedHeaders == ["Authorization: Bearer ********", "Content-Type: text/plain"])
        #expect(request.body == UpstreamBase64.encode(Array("From: a@x\r\nTo: b@y\r\n\r\nhi\r\n".utf8)))
    }

    @Test func theSizeLimitIsAtThreeMiBOfMIME() throws {
        let header = "From: a@x\r\nTo: b@y\r\n\r\n"
        func body(total: Int) -> String {
            let lines = (total - header.utf8.count) / 100
            var text = header + String(repeating: String(repeating: "x", count: 98) + "\r\n", count: lines)
            text += String(repeating: "y", count: total - text.utf8.count)
            return text
        }
        let atLimit = Self.message(body(total: GraphRequest.maxMessageBytes - 2), to: ["b@y"])  // the encoder adds CRLF
        let request = try GraphRequest.sendMail(base: "https://g", mailbox: "m@x", token: Self.token, message: atLimit).get()
        #expect(request.mime.count == GraphRequest.maxMessageBytes)
        #expect(request.body.count == GraphRequest.maxRequestBytes)
        let over = Self.message(body(total: GraphRequest.maxMessageBytes - 1), to: ["b@y"])
        guard case .failure(let failure) = GraphRequest.sendMail(base: "https://g", mailbox: "m@x", token: Self.token, message: over) else {
            Issue.record("one octet over the limit was accepted"); return
        }
        #expect(failure.isPermanent && failure.reason == .graphMessageTooLarge(limit: GraphRequest.maxMessageBytes))
        #expect(failure.detail.contains("4 MB") && failure.detail.contains("upload sessions are not supported"))
    }
}

@Suite struct GraphRecipientHeadersTests {
    @Test func addressListsAreRead() {
        #expect(GraphRecipientHeaders.addresses(in: #""Smith, Ann" <ann@x.example>, bob@y.example (Bob), <c@z>"#)
                == ["ann@x.example", "bob@y.example", "c@z"])
        #expect(GraphRecipientHeaders.addresses(in: "team: a@x, b@y;, c@z") == ["a@x", "b@y", "c@z"])
        #expect(GraphRecipientHeaders.addresses(in: "undisclosed-recipients:;") == [])
        #expect(GraphRecipientHeaders.addresses(in: "Ann (ann@comment.example) <real@x>") == ["real@x"])
        #expect(GraphRecipientHeaders.addresses(in: "<@relay.example:user@host>") == ["user@host"])
    }

    @Test func unnamedEnvelopeRecipientsBecomeOneBccField() {
        let message = Array("From: a@x\r\nTo: Ops <OPS@example.com>,\r\n\tann@example.com\r\nCc: c@example.com\r\n\r\nbody\r\n".utf8)
        let out = GraphRecipientHeaders.addingBcc(for: ["ops@example.com", "c@example.com", "hidden@example.net", "Two@example.net", "two@example.net"],
                                                  to: message)
        #expect(String(decoding: out, as: UTF8.self)
                == "From: a@x\r\nTo: Ops <OPS@example.com>,\r\n\tann@example.com\r\nCc: c@example.com\r\nBcc: hidden@example.net,\r\n Two@example.net\r\n\r\nbody\r\n")
    }

    @Test func aMessageNamingEveryRecipientIsUnchanged() {
        let message = Array("To: a@x\r\nBcc: b@y\r\n\r\n.body\r\n".utf8)
        #expect(GraphRecipientHeaders.addingBcc(for: ["a@x", "B@Y"], to: message) == message)
    }

    @Test func headersWithoutABodyGetTheFieldBeforeTheirEnd() {
        #expect(GraphRecipientHeaders.addingBcc(for: ["b@y"], to: Array("Subject: s".utf8)) == Array("Subject: s\r\nBcc: b@y\r\n".utf8))
        #expect(GraphRecipientHeaders.addingBcc(for: ["b@y"], to: Array("\r\nbody".utf8)) == Array("Bcc: b@y\r\n\r\nbody".utf8))
    }

    @Test func anAddressCannotInjectAHeader() {
        #expect(GraphRecipientHeaders.bccField(["a@x\r\nX-Evil: 1"]) == Array("Bcc: a@xX-Evil:1\r\n".utf8))
    }
}
