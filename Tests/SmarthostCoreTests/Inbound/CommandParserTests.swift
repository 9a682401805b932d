import Testing
@testable import SmarthostCore

@Suite struct SMTPCommandParserTests {
    private func parse(_ line: String, utf8: Bool = false, local: Bool = false) -> Result<SMTPCommand, CommandParser.Rejection> {
        CommandParser.parse(Array(line.utf8)[...], utf8Allowed: utf8, localPartsAllowed: local)
    }

    /// The reply line of a rejection, or "ok" when the line parsed.
    private func reply(_ line: String, utf8: Bool = false, local: Bool = false) -> String {
        switch parse(line, utf8: utf8, local: local) {
        case .success: "ok"
        case .failure(let rejection): rejection.reply.description
        }
    }

    private func path(_ line: String, utf8: Bool = false, local: Bool = false) -> MailPath? {
        switch parse(line, utf8: utf8, local: local) {
        case .success(.mail(let path, _)), .success(.rcpt(let path)): path
        default: nil
        }
    }

    @Test func verbsAreCaseInsensitive() throws {
        #expect(try parse("ehlo client.example").get() == .ehlo(domain: "client.example"))
        #expect(try parse("HeLo client").get() == .helo(domain: "client"))
        #expect(try parse("data").get() == .data)
        #expect(try parse("MaIl FrOm:<a@b.example>").get() == .mail(MailPath(localPart: "a", domain: "b.example"), .init()))
        #expect(try parse("rcpt to:<c@d.example>").get() == .rcpt(MailPath(localPart: "c", domain: "d.example")))
        #expect(try parse("NOOP anything at all").get() == .noop)
        #expect(try parse("HELP DATA").get() == .help)
        #expect(try parse("VRFY postmaster").get() == .vrfy)
        #expect(try parse("QUIT").get() == .quit)
        #expect(try parse("RSET ").get() == .rset)
    }

    @Test func refusedAndUnknownVerbs() throws {
        for verb in ["STARTTLS", "AUTH PLAIN AGFh", "BDAT 10 LAST", "EXPN list", "TURN", "etrn x"] {
            #expect(try parse(verb).get().verb.rawValue == verb.prefix { $0 != " " }.uppercased())
        }
        #expect(reply("FOO bar") == "500 5.5.2 Error: command not recognized")
        #expect(reply("") == "500 5.5.2 Error: command not recognized")
        #expect(reply("MAILFROM:<a@b>") == "500 5.5.2 Error: command not recognized")
    }

    @Test func controlCharactersAreRefused() {
        #expect(reply("NOOP \u{1}") == "501 5.5.2 Syntax error: control characters in command")
        #expect(reply("MAIL\tFROM:<a@b>") == "501 5.5.2 Syntax error: control characters in command")
        #expect(reply("RSET\u{7F}") == "501 5.5.2 Syntax error: control characters in command")
    }

    @Test func heloNeedsAValidName() {
        #expect(reply("EHLO") == "501 5.5.4 Syntax: EHLO hostname")
        #expect(reply("HELO ") == "501 5.5.4 Syntax: HELO hostname")
        #expect(reply("EHLO [127.0.0.1]") == "ok")
        #expect(reply("EHLO [IPv6:::1]") == "ok")
        #expect(reply("EHLO build_agent.corp") == "ok")
        #expect(reply("EHLO bad!name") == "501 5.5.4 Error: invalid EHLO hostname")
        #expect(reply("EHLO -lead.example") == "501 5.5.4 Error: invalid EHLO hostname")
        #expect(reply("EHLO a..b") == "501 5.5.4 Error: invalid EHLO hostname")
        #expect(reply("EHLO [300.1.1.1]") == "501 5.5.4 Error: invalid EHLO hostname")
    }

    @Test func commandsWithoutArgumentsRefuseThem() {
        #expect(reply("DATA now") == "501 5.5.4 Syntax: DATA")
        #expect(reply("QUIT please") == "501 5.5.4 Syntax: QUIT")
        #expect(reply("RSET x") == "501 5.5.4 Syntax: RSET")
    }

    @Test func mailToleratesASpaceAfterTheColon() {
        #expect(path("MAIL FROM: <a@b.example>") == MailPath(localPart: "a", domain: "b.example"))
        #expect(path("RCPT TO: <c@d.example>") == MailPath(localPart: "c", domain: "d.example"))
        #expect(reply("MAIL FROM:  <a@b.example>") == "501 5.1.7 Error: bad sender address syntax")
    }

    @Test func validPaths() {
        let cases: [(String, String, String)] = [
            ("<user.name+tag@example.com>", "user.name+tag", "example.com"),
            ("<\"john doe\"@example.com>", "\"john doe\"", "example.com"),
            ("<\"a\\\"b>c\"@example.com>", "\"a\\\"b>c\"", "example.com"),
            ("<x@[192.0.2.1]>", "x", "[192.0.2.1]"),
            ("<x@[IPv6:2001:db8::1]>", "x", "[IPv6:2001:db8::1]"),
            ("<x@[ipv6:1:2:3:4:5:6:7:8]>", "x", "[ipv6:1:2:3:4:5:6:7:8]"),
            ("<x@[IPv6:::ffff:192.0.2.1]>", "x", "[IPv6:::ffff:192.0.2.1]"),
            ("<@relay1.example,@relay2.example:x@y.example>", "x", "y.example"),
            ("<x@xn--bcher-kva.example>", "x", "xn--bcher-kva.example"),
        ]
        for (text, local, domain) in cases {
            #expect(path("MAIL FROM:" + text) == MailPath(localPart: local, domain: domain), "\(text)")
            #expect(path("RCPT TO:" + text) == MailPath(localPart: local, domain: domain), "\(text)")
        }
    }

    @Test func invalidPaths() {
        // "<a>" is not here: a bare local part is a path, taken from this host and refused
        // with its own 553 from others (bareLocalPartsOnlyFromThisHost).
        let bad = ["a@b.example", "<a@b.example", "<@b.example>", "<a@>", "<a..b@c.example>", "<.a@c.example>",
                   "<a@-c.example>", "<a@c-.example>", "<a@c..example>", "<a b@c.example>", "<\"unterminated@c.example>",
                   "<a@[256.0.0.1]>", "<a@[1.2.3]>", "<a@[IPv6:1::2::3]>", "<a@[IPv6:1:2:3:4:5:6:7]>",
                   "<a@[IPv6:1:2:3:4:5:6:7::8]>", "<a@[IPv6:12345::1]>", "<a@[tag:whatever]>", "<@r.example a@b.example>",
                   "<a@b.example>x"]
        for text in bad {
            for local in [false, true] {
                #expect(reply("MAIL FROM:" + text, local: local) == "501 5.1.7 Error: bad sender address syntax", "\(text)")
                #expect(reply("RCPT TO:" + text, local: local) == "501 5.1.3 Error: bad recipient address syntax", "\(text)")
            }
        }
    }

    @Test func nullSenderOnlyInMailAndPostmasterOnlyInRcpt() {
        #expect(path("MAIL FROM:<>") == MailPath.null)
        #expect(path("MAIL FROM:<>")?.isNull == true)
        #expect(reply("RCPT TO:<>") == "501 5.1.3 Error: bad recipient address syntax")
        #expect(path("RCPT TO:<Postmaster>")?.isPostmaster == true)
        #expect(path("RCPT TO:<postmaster>")?.mailbox == "postmaster")
        // A sender of <Postmaster> is a bare local part like any other (this host's only).
        #expect(reply("MAIL FROM:<Postmaster>") == "553 5.1.7 Error: sender address needs a domain (a bare local part is taken only from this host)")
        #expect(path("MAIL FROM:<Postmaster>", local: true) == MailPath(localPart: "Postmaster", domain: ""))
        #expect(path("RCPT TO:<Postmaster>", local: false)?.isPostmaster == true, "every server takes <Postmaster>")
    }

    /// cron, mailx and PHP on this host send `<root>`: a path with no domain, qualified at
    /// acceptance. A client elsewhere hears why it is refused, not "bad syntax".
    @Test func bareLocalPartsOnlyFromThisHost() {
        #expect(path("MAIL FROM:<root>", local: true) == MailPath(localPart: "root", domain: ""))
        #expect(path("RCPT TO:<www-data>", local: true) == MailPath(localPart: "www-data", domain: ""))
        #expect(path("RCPT TO:<\"odd name\">", local: true) == MailPath(localPart: "\"odd name\"", domain: ""))
        #expect(path("MAIL FROM:<jürgen> SMTPUTF8", local: true) == MailPath(localPart: "jürgen", domain: ""))
        #expect(reply("MAIL FROM:<jürgen>", local: true) == "553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
        #expect(reply("MAIL FROM:<root>") == "553 5.1.7 Error: sender address needs a domain (a bare local part is taken only from this host)")
        #expect(reply("RCPT TO:<root>") == "553 5.1.3 Error: recipient address needs a domain (a bare local part is taken only from this host)")
        #expect(path("MAIL FROM:<>", local: true) == MailPath.null)
        #expect(reply("RCPT TO:<>", local: true) == "501 5.1.3 Error: bad recipient address syntax")
        for bad in ["<a..b>", "<.a>", "<a b>", "<a@>", "<\"open>"] {
            #expect(reply("MAIL FROM:" + bad, local: true) == "501 5.1.7 Error: bad sender address syntax", "\(bad)")
        }
    }

    @Test func pathOf256OctetsIsTheLimit() {
        let local = String(repeating: "a", count: 256 - "<@x.example>".utf8.count)
        let at256 = "<" + local + "@x.example>"
        #expect(at256.utf8.count == 256)
        // A local part over 64 octets is accepted (liberal, as Postfix); the path length is enforced.
        #expect(reply("RCPT TO:" + at256) == "ok")
        #expect(reply("RCPT TO:<a" + local + "@x.example>") == "501 5.1.3 Error: bad recipient address syntax")
    }

    @Test func utf8AddressesNeedSMTPUTF8() {
        #expect(reply("MAIL FROM:<jürgen@example.de>") == "553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
        #expect(reply("MAIL FROM:<a@bücher.example>") == "553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
        #expect(path("MAIL FROM:<jürgen@bücher.example> SMTPUTF8") == MailPath(localPart: "jürgen", domain: "bücher.example"))
        #expect(reply("RCPT TO:<δοκιμή@παράδειγμα.example>") == "553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
        #expect(reply("RCPT TO:<δοκιμή@παράδειγμα.example>", utf8: true) == "ok")
        // Invalid UTF-8 is a syntax error even with SMTPUTF8.
        let invalid: [UInt8] = Array("MAIL FROM:<".utf8) + [0xC3, 0x28] + Array("@x.example> SMTPUTF8".utf8)
        #expect(throws: CommandParser.Rejection.self) { try CommandParser.parse(invalid[...]).get() }
    }

    @Test func mailParameters() throws {
        let command = try parse("MAIL FROM:<a@b.example> SIZE=1000 body=8bitmime SMTPUTF8").get()
        #expect(command == .mail(MailPath(localPart: "a", domain: "b.example"),
                                 MailPath.Parameters(size: 1000, body: .eightBitMIME, smtputf8: true)))
        #expect(try parse("MAIL FROM:<> BODY=7BIT").get() == .mail(.null, MailPath.Parameters(body: .sevenBit)))
        #expect(try parse("MAIL FROM:<> SIZE=99999999999999999999").get() == .mail(.null, MailPath.Parameters(size: Int.max)))
    }

    @Test func badMailParameters() {
        #expect(reply("MAIL FROM:<a@b.example> SIZE=abc") == "501 5.5.4 Error: bad SIZE parameter value")
        #expect(reply("MAIL FROM:<a@b.example> SIZE") == "501 5.5.4 Error: bad SIZE parameter value")
        #expect(reply("MAIL FROM:<a@b.example> BODY=BINARYMIME") == "501 5.5.4 Error: bad BODY parameter value")
        #expect(reply("MAIL FROM:<a@b.example> SMTPUTF8=yes") == "501 5.5.4 Error: bad SMTPUTF8 parameter value")
        #expect(reply("MAIL FROM:<a@b.example> SIZE=1 SIZE=2") == "501 5.5.4 Error: duplicate SIZE parameter")
        #expect(reply("MAIL FROM:<a@b.example> =x") == "501 5.5.4 Error: bad parameter syntax")
        #expect(reply("MAIL FROM:<a@b.example> RET=HDRS") == "555 5.5.4 Error: unsupported parameter RET")
        #expect(reply("MAIL FROM:<a@b.example> AUTH=<>") == "555 5.5.4 Error: unsupported parameter AUTH")
        #expect(reply("RCPT TO:<c@d.example> NOTIFY=NEVER") == "555 5.5.4 Error: unsupported parameter NOTIFY")
        #expect(reply("MAIL FROM:<a@b.example>SIZE=1") == "501 5.1.7 Error: bad sender address syntax")
    }

    @Test func verbLookupForTheDispatcher() {
        #expect(CommandParser.verb(of: Array("rcpt TO:<x@y>".utf8)[...]) == .rcpt)
        #expect(CommandParser.verb(of: Array("XYZZY".utf8)[...]) == nil)
        #expect(InboundCommandTable.flags(for: .data).contains(.endsGroup))
        #expect(InboundCommandTable.flags(for: .starttls) == [.notImplemented])
    }
}
