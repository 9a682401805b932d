import Testing
@testable import SmarthostCore

@Suite struct RoutingOrgClassifierTests {
    private let classifier = OrgClassifier(orgHeader: "X-Smarthost-Org", orgs: [
        OrgSetting(id: "first", route: .useDefault, senders: ["alerts@*.example"]),
        OrgSetting(id: "acme", route: .useDefault, senders: ["*@acme.example", "robot-*@acme-robots.example"]),
        OrgSetting(id: "second", route: .useDefault, senders: ["*@acme.example"]),
        OrgSetting(id: "sub", route: .useDefault, senders: ["*@*.globex.example"]),
    ])

    @Test func headerWinsOverSender() {
        let choice = classifier.classify(headerValue: "  tenant-42 \t", sender: "x@acme.example")
        #expect(choice == OrgChoice(orgID: "tenant-42", source: .header("X-Smarthost-Org")))
    }

    @Test func emptyHeaderFallsThroughToSender() {
        #expect(classifier.classify(headerValue: "   ", sender: "x@acme.example").orgID == "acme")
    }

    @Test func firstOrgInFileOrderWins() {
        // "second" has the same pattern as "acme", but acme comes first in the file.
        #expect(classifier.classify(headerValue: nil, sender: "billing@acme.example")
            == OrgChoice(orgID: "acme", source: .senderPattern("*@acme.example")))
        // "first" matches alerts@ in any .example domain, and is listed before acme.
        #expect(classifier.classify(headerValue: nil, sender: "alerts@acme.example").orgID == "first")
    }

    @Test func domainIsCaseInsensitiveLocalPartIsNot() {
        #expect(classifier.classify(headerValue: nil, sender: "Billing@ACME.Example").orgID == "acme")
        #expect(classifier.classify(headerValue: nil, sender: "robot-7@acme-robots.example").orgID == "acme")
        #expect(classifier.classify(headerValue: nil, sender: "Robot-7@acme-robots.example").orgID == nil)
    }

    @Test func globs() {
        #expect(classifier.classify(headerValue: nil, sender: "a@eu.globex.example").orgID == "sub")
        #expect(classifier.classify(headerValue: nil, sender: "a@globex.example").orgID == nil)
        #expect(classifier.classify(headerValue: nil, sender: "x@acme.example.evil").orgID == nil)
        #expect(classifier.classify(headerValue: nil, sender: "x@notacme.example").orgID == nil)
        #expect(classifier.classify(headerValue: nil, sender: "<x@acme.example>").orgID == "acme")
    }

    @Test func nothingMatchesMeansHostLevel() {
        #expect(classifier.classify(headerValue: nil, sender: "x@other.example")
            == OrgChoice(orgID: nil, source: .hostLevel))
        #expect(classifier.classify(headerValue: nil, sender: "").source == .hostLevel)
    }

    @Test func builtFromConfigUsesItsHeaderName() throws {
        let config = try ConfigTestSupport.parse("org_header: X-Tenant\n" + ConfigTestSupport.minimal
            + "\norgs:\n  acme:\n    senders: [\"*@acme.example\"]")
        let fromConfig = OrgClassifier(config: config)
        #expect(fromConfig.classify(headerValue: "acme", sender: "").source == .header("X-Tenant"))
        #expect(fromConfig.classify(headerValue: nil, sender: "a@acme.example").orgID == "acme")
    }
}

/// The org header comes from applications: only a plain, bounded id is taken from it.
@Suite struct RoutingOrgHeaderValueTests {
    private let classifier = OrgClassifier(orgHeader: "X-Smarthost-Org", orgs: [
        OrgSetting(id: "acme", route: .useDefault, senders: ["*@acme.example"]),
        OrgSetting(id: "acme+eu", route: .useDefault, senders: []),
    ])

    @Test func idsUpTo64PlainCharactersAreTaken() {
        let longest = String(repeating: "a", count: 63) + "Z"
        #expect(classifier.classify(headerValue: longest, sender: "").orgID == longest)
        #expect(classifier.classify(headerValue: "tenant_42.eu-west", sender: "").orgID == "tenant_42.eu-west")
        #expect(classifier.classify(headerValue: "tenant-42", sender: "").ignoredHeaderValue == nil)
    }

    @Test(arguments: [
        String(repeating: "a", count: 65),
        (0..<60).map { "tenant-\($0)" }.joined(separator: "\r\n "),   // a 60-line folded value
        "acme\u{1B}]0;pwned\u{07}",                                       // a terminal escape
        "acme corp", "acme/../x", "ácme", "acme;rm",
    ])
    func otherValuesAreIgnoredAsIfAbsent(value: String) {
        let choice = classifier.classify(headerValue: value, sender: "robot@acme.example")
        #expect(choice.orgID == "acme", "classified by the sender, as without a header")
        #expect(choice.source == .senderPattern("*@acme.example"))
        #expect(choice.ignoredHeaderValue == value)
        let hostLevel = classifier.classify(headerValue: value, sender: "x@elsewhere.example")
        #expect(hostLevel.orgID == nil && hostLevel.source == .hostLevel)
    }

    @Test func aConfiguredIdIsTakenEvenOutsideTheGrammar() {
        #expect(classifier.classify(headerValue: "acme+eu", sender: "").orgID == "acme+eu")
        #expect(classifier.classify(headerValue: "other+eu", sender: "").orgID == nil)
    }

    @Test func theGrammar() {
        #expect(OrgClassifier.isOrgID("a"))
        #expect(!OrgClassifier.isOrgID(""))
        #expect(OrgClassifier.isOrgID(String(repeating: "9", count: 64)))
        #expect(!OrgClassifier.isOrgID(String(repeating: "9", count: 65)))
        #expect(!OrgClassifier.isOrgID("a\u{0}b"))
    }
}
