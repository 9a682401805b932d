/// `UpstreamReplyParser` on an arbitrary server byte stream, fed in random chunks.
///
/// Invariants: the replies (and whether the stream is refused) do not depend on the
/// chunking; every reply has a code 200–559 and at least one line; an enhanced code
/// has the reply's class; a reply written back with `wireBytes` parses to itself.
enum ReplyFuzz {
    struct Parsed: Equatable {
        var replies: [SMTPReply] = []
        var malformed = false
        var buffered = false
    }

    static func run(_ input: inout FuzzInput) {
        let maxLineLength = [4096, 16, 64, 512][Int(input.control & 3)]
        let maxLines = input.control & 4 == 0 ? 100 : 3
        let whole = parse([input.payload], maxLineLength: maxLineLength, maxLines: maxLines)
        let chunked = parse(input.chunks(), maxLineLength: maxLineLength, maxLines: maxLines)
        check(whole.replies == chunked.replies && whole.malformed == chunked.malformed,
              "chunking changed the result: \(whole) vs \(chunked)")
        if !whole.malformed { check(whole.buffered == chunked.buffered, "buffered state depends on chunking") }
        for reply in whole.replies { checkReply(reply, maxLines: maxLines) }
    }

    static func parse(_ chunks: [ArraySlice<UInt8>], maxLineLength: Int, maxLines: Int) -> Parsed {
        var parser = UpstreamReplyParser(maxLineLength: maxLineLength, maxLines: maxLines)
        var parsed = Parsed()
        for chunk in chunks {
            parser.feed(chunk)
            do {
                while let reply = try parser.nextReply() { parsed.replies.append(reply) }
            } catch {
                parsed.malformed = true
                // The error is sticky: asking again gives it again, never a reply.
                check((try? parser.nextReply()) == nil, "parser recovered after a malformed line")
                return parsed
            }
        }
        parsed.buffered = parser.hasBufferedBytes
        return parsed
    }

    /// The parser drops every space after a repeated enhanced code ("550 5.1.1  text"),
    /// so leading spaces of a line are not significant when the reply has one.
    static func normalized(_ reply: SMTPReply) -> SMTPReply {
        guard reply.enhanced != nil else { return reply }
        return SMTPReply(code: reply.code, enhanced: reply.enhanced,
                         lines: reply.lines.map { String($0.drop { $0 == " " }) })
    }

    static func checkReply(_ reply: SMTPReply, maxLines: Int) {
        check((200...559).contains(reply.code), "reply code \(reply.code)")
        check(!reply.lines.isEmpty && reply.lines.count <= maxLines, "reply with \(reply.lines.count) lines")
        if let enhanced = reply.enhanced {
            check(enhanced.first == Character(String(reply.code / 100)), "enhanced \(enhanced) for \(reply.code)")
        }
        // Written back (as our session would log or relay it) and read again.
        var parser = UpstreamReplyParser(maxLineLength: 1 << 20, maxLines: maxLines)
        parser.feed(reply.wireBytes)
        do {
            let again = try parser.nextReply()
            check(again.map(normalized) == normalized(reply), "round trip changed \(reply) into \(String(describing: again))")
            check(!parser.hasBufferedBytes, "round trip left bytes")
        } catch {
            check(false, "wireBytes of \(reply) do not parse: \(error)")
        }
    }
}
