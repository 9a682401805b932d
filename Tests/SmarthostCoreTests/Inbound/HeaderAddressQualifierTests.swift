import Testing
@testable import SmarthostCore

/// Bare local parts in the address fields of a header section get `@<hostname>`, on the
/// bytes: folding, comments, display names, groups and every other byte stay as written.
@Suite struct HeaderAddressQualifierTests {
    static func qualified(_ text: String, complete: Bool = true) -> String {
        String(decoding: HeaderAddressQualifier.qualify(Array(text.utf8), domain: "box.example", complete: complete), as: UTF8.self)
    }

    @Test func cronsFromWithItsComment() {
        #expect(Self.qualified("From: root (Cron Daemon)\r\nTo: root\r\nSubject: Cron <root@box> run-parts\r\n\r\nbody\r\n")
            == "From: root@box.example (Cron Daemon)\r\nTo: root@box.example\r\nSubject: Cron <root@box> run-parts\r\n\r\nbody\r\n")
    }

    @Test func displayNamesAngleAddressesAndLists() {
        #expect(Self.qualified("To: Ops <ops>, a@x.example, bob\r\n\r\n")
            == "To: Ops <ops@box.example>, a@x.example, bob@box.example\r\n\r\n")
        #expect(Self.qualified("Cc: \"Doe, John\" <jd>, \"x\" <y@z.example>\r\n\r\n")
            == "Cc: \"Doe, John\" <jd@box.example>, \"x\" <y@z.example>\r\n\r\n", "a comma inside quotes splits nothing")
        #expect(Self.qualified("From: =?UTF-8?Q?J=C3=BCrgen?= <juergen>\r\n\r\n")
            == "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@box.example>\r\n\r\n")
    }

    @Test func foldedFieldsAreQualifiedOnEveryLine() {
        #expect(Self.qualified("To: alice,\r\n\tbob (Bob\r\n  B.),\r\n carol@x.example\r\nSubject: s\r\n\r\n")
            == "To: alice@box.example,\r\n\tbob@box.example (Bob\r\n  B.),\r\n carol@x.example\r\nSubject: s\r\n\r\n")
    }

    @Test func commentsNestAndEscape() {
        #expect(Self.qualified("From: root (a (b) \\) c, d)\r\n\r\n") == "From: root@box.example (a (b) \\) c, d)\r\n\r\n")
        #expect(Self.qualified("From: (leading) root\r\n\r\n") == "From: (leading) root@box.example\r\n\r\n")
    }

    @Test func groups() {
        #expect(Self.qualified("To: team: a, b@x.example;, c\r\n\r\n") == "To: team: a@box.example, b@x.example;, c@box.example\r\n\r\n")
        let empty = "To: undisclosed-recipients:;\r\n\r\n"
        #expect(Self.qualified(empty) == empty)
    }

    @Test func quotedLocalParts() {
        #expect(Self.qualified("From: \"john smith\"\r\n\r\n") == "From: \"john smith\"@box.example\r\n\r\n")
        #expect(Self.qualified("From: \"a@b\"\r\n\r\n") == "From: \"a@b\"@box.example\r\n\r\n", "the @ is quoted")
        let done = "From: \"a b\"@x.example\r\n\r\n"
        #expect(Self.qualified(done) == done)
    }

    @Test func qualifiedAndUnreadableAddressesAreLeftAsWritten() {
        for text in ["From: root@box\r\nTo: A <a@x.example>\r\n\r\n", "To: John Smith\r\n\r\n", "From: <>\r\n\r\n",
                     "To: <@relay.example:a@x.example>\r\n\r\n", "To: \"unterminated\r\n\r\n", "To: <open\r\n\r\n"] {
            let bytes = Array(text.utf8)
            #expect(HeaderAddressQualifier.qualify(bytes, domain: "box.example", complete: true) == bytes, "\(text)")
        }
    }

    @Test func everyAddressFieldAnyCaseAndNoOther() {
        let fields = ["From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Resent-From", "Resent-Sender", "Resent-To",
                      "Resent-Cc", "Resent-Bcc", "FROM", "cc"]
        for name in fields {
            #expect(Self.qualified("\(name): u\r\n\r\n") == "\(name): u@box.example\r\n\r\n", "\(name)")
        }
        let others = "Subject: root\r\nX-To: root\r\nReceived: from x by y for <root>\r\nReturn-Path: <root>\r\n\r\n"
        #expect(Self.qualified(others) == others)
    }

    @Test func theBodyAndLaterLinesAreNotHeaders() {
        let text = "Subject: s\r\n\r\nTo: root\r\nFrom: root\r\n"
        #expect(Self.qualified(text) == text)
        // The section also ends at a line that is neither a field nor a continuation.
        let odd = "Subject: s\r\nnot a field\r\nTo: root\r\n\r\n"
        #expect(Self.qualified(odd) == odd)
    }

    @Test func aHeaderWithoutBodyOrFinalLineEnd() {
        #expect(Self.qualified("To: root") == "To: root@box.example")
        #expect(Self.qualified("To: root\r\n") == "To: root@box.example\r\n")
    }

    /// Cut at the capture bound: the field the cut may have split is left, the ones before
    /// are qualified; a cut after the section's end changes nothing.
    @Test func aCutHeaderLeavesItsLastField() {
        #expect(Self.qualified("From: root\r\nTo: ali", complete: false) == "From: root@box.example\r\nTo: ali")
        #expect(Self.qualified("From: root\r\nTo: alice\r\n", complete: false) == "From: root@box.example\r\nTo: alice\r\n",
                "a line end does not prove the field is over: a continuation may follow")
        #expect(Self.qualified("From: root\r\n\r\nTo: x", complete: false) == "From: root@box.example\r\n\r\nTo: x")
    }

    @Test func endOfSectionIsFoundAcrossChunks() {
        let bytes = Array("A: b\r\n\r\nbody".utf8)
        #expect(HeaderFields.endOfSection(in: bytes, from: -3) == 8)
        #expect(HeaderFields.endOfSection(in: Array(bytes[..<7]), from: -3) == nil, "the first chunk ends inside CRLF CRLF")
        #expect(HeaderFields.endOfSection(in: bytes, from: 7 - 3) == 8, "the next search starts 3 before that end")
        #expect(HeaderFields.endOfSection(in: Array("A: b\r\n".utf8), from: 0) == nil)
    }
}
