import Testing
@testable import SmarthostCore

@Suite struct UpstreamReplyParserTests {
    private static let stream = Array("220 mx.example ESMTP ready\r\n250-mx.example hello\r\n250-PIPELINING\r\n250 2.0.0 SIZE 100\r\n550-5.1.1 no such user\r\n550 5.1.1 try again never\r\n".utf8)

    private static let expected = [
        SMTPReply(code: 220, enhanced: nil, lines: ["mx.example ESMTP ready"]),
        SMTPReply(code: 250, enhanced: nil, lines: ["mx.example hello", "PIPELINING", "2.0.0 SIZE 100"]),
        SMTPReply(code: 550, enhanced: "5.1.1", lines: ["no such user", "try again never"]),
    ]

    private func parseAll(_ chunks: [ArraySlice<UInt8>]) throws -> [SMTPReply] {
        var parser = UpstreamReplyParser()
        var replies: [SMTPReply] = []
        for chunk in chunks {
            parser.feed(chunk)
            while let reply = try parser.nextReply() { replies.append(reply) }
        }
        #expect(!parser.hasBufferedBytes)
        return replies
    }

    @Test func wholeStream() throws {
        #expect(try parseAll([Self.stream[...]]) == Self.expected)
    }

    @Test func everySplitIntoTwoChunks() throws {
        for cut in 0...Self.stream.count {
            let replies = try parseAll([Self.stream[..<cut], Self.stream[cut...]])
            #expect(replies == Self.expected, "cut at \(cut)")
        }
    }

    @Test func oneByteAtATime() throws {
        #expect(try parseAll(Self.stream.indices.map { Self.stream[$0...$0] }) == Self.expected)
    }

    @Test func bareLFAndCodeOnlyLinesAreTolerated() throws {
        let replies = try parseAll([Array("250-first\n250\n354\r\n".utf8)[...]])
        #expect(replies == [SMTPReply(code: 250, enhanced: nil, lines: ["first", ""]),
                            SMTPReply(code: 354, enhanced: nil, lines: [""])])
    }

    @Test func enhancedCodeMustMatchTheReplyClass() throws {
        let replies = try parseAll([Array("250 5.1.1 odd\r\n451 4.3.0 later\r\n".utf8)[...]])
        #expect(replies[0].enhanced == nil)
        #expect(replies[0].lines == ["5.1.1 odd"])
        #expect(replies[1].enhanced == "4.3.0")
        #expect(replies[1].lines == ["later"])
    }

    @Test func incompleteReplyWaits() throws {
        var parser = UpstreamReplyParser()
        parser.feed(Array("250-one\r\n250 tw".utf8))
        #expect(try parser.nextReply() == nil)
        #expect(parser.hasBufferedBytes)
        parser.feed(Array("o\r\n".utf8))
        #expect(try parser.nextReply() == SMTPReply(code: 250, enhanced: nil, lines: ["one", "two"]))
    }

    @Test(arguments: [
        "abc hello\r\n",
        "25\r\n",
        "2500 x\r\n",
        "650 nope\r\n",
        "260 nope\r\n",
        "250_x\r\n",
        "250-one\r\n251 two\r\n",
    ])
    func malformed(_ text: String) {
        var parser = UpstreamReplyParser()
        parser.feed(Array(text.utf8))
        #expect(throws: UpstreamReplyParser.Malformed.self) {
            while try parser.nextReply() != nil {}
        }
        // Sticky: the stream stays unusable.
        #expect(throws: UpstreamReplyParser.Malformed.self) { try parser.nextReply() }
    }

    @Test func overlongLineIsRefusedBeforeItsEndArrives() {
        var parser = UpstreamReplyParser()
        parser.feed(Array("250 ".utf8) + [UInt8](repeating: 65, count: 4100))
        #expect(throws: UpstreamReplyParser.Malformed.self) { try parser.nextReply() }
    }

    @Test func lineAtTheLimitIsAccepted() throws {
        var parser = UpstreamReplyParser()
        parser.feed(Array("250 ".utf8) + [UInt8](repeating: 65, count: 4092) + [13, 10])
        #expect(try parser.nextReply()?.lines.first?.utf8.count == 4092)
    }

    @Test func tooManyLines() {
        var parser = UpstreamReplyParser()
        parser.feed(Array(String(repeating: "250-x\r\n", count: 101).utf8))
        #expect(throws: UpstreamReplyParser.Malformed.self) {
            while try parser.nextReply() != nil {}
        }
    }

    @Test func resetDiscardsBufferedBytes() throws {
        var parser = UpstreamReplyParser()
        parser.feed(Array("250 injected\r\n250-partial".utf8))
        parser.reset()
        #expect(!parser.hasBufferedBytes)
        parser.feed(Array("220 clean\r\n".utf8))
        #expect(try parser.nextReply() == SMTPReply(code: 220, enhanced: nil, lines: ["clean"]))
    }
}

@Suite struct UpstreamCapabilitiesTests {
    private func capabilities(_ lines: [String]) -> UpstreamCapabilities {
        UpstreamCapabilities(ehloReply: SMTPReply(code: 250, enhanced: nil, lines: ["mx.example hello"] + lines))
    }

    @Test func allKnownExtensions() {
        let caps = capabilities(["PIPELINING", "SIZE 35882577", "STARTTLS", "AUTH PLAIN LOGIN XOAUTH2",
                                 "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"])
        #expect(caps.pipelining && caps.startTLS && caps.eightBitMIME && caps.smtpUTF8 && caps.enhancedStatusCodes)
        #expect(caps.maxSize == 35882577)
        #expect(caps.authMechanisms == ["PLAIN", "LOGIN", "XOAUTH2"])
    }

    @Test func firstLineIsNotAKeyword() {
        let caps = UpstreamCapabilities(ehloReply: SMTPReply(code: 250, enhanced: nil, lines: ["STARTTLS"]))
        #expect(caps == UpstreamCapabilities())
    }

    @Test func oldAuthFormAndCaseAreAccepted() {
        let caps = capabilities(["auth=login", "AUTH=PLAIN LOGIN", "size"])
        #expect(caps.authMechanisms == ["LOGIN", "PLAIN"])
        #expect(caps.maxSize == 0)
        #expect(caps.offersAuth("plain"))
    }

    @Test func nothingOffered() {
        let caps = capabilities([])
        #expect(!caps.startTLS && caps.authMechanisms.isEmpty && caps.maxSize == nil && !caps.pipelining)
    }
}
