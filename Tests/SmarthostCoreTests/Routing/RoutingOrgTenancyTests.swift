import Testing
@testable import SmarthostCore

/// The tenancy decision as a value (issue 15): a classified message, its sender and its
/// client in, allowed or refused out, at and around each rule.
@Suite struct RoutingOrgTenancyTests {
    static let app = ClientIdentity.address(bytes: [127, 0, 0, 1], text: "127.0.0.1")
    static let other = ClientIdentity.address(bytes: [127, 0, 0, 2], text: "127.0.0.2")
    static let v6 = ClientIdentity.address(bytes: [UInt8](repeating: 0, count: 15) + [1], text: "::1")
    static let mapped = ClientIdentity.address(bytes: [UInt8](repeating: 0, count: 10) + [255, 255, 127, 0, 0, 2],
                                               text: "::ffff:127.0.0.2")

    static func orgs(acmeClients: [ClientRule]? = nil) -> [OrgSetting] {
        var acme = OrgSetting(id: "acme", route: .useDefault, senders: ["*@acme.example", "robot-*@robots.example"])
        acme.clients = acmeClients
        return [
            acme,
            OrgSetting(id: "globex", route: .useDefault, senders: ["alerts@globex.example"]),
            OrgSetting(id: "initech", route: .useDefault),
        ]
    }

    static func decide(_ trust: OrgHeaderTrust, header: String?, sender: String,
                       client: ClientIdentity = app, acmeClients: [ClientRule]? = nil) -> OrgTenancy.Decision {
        let orgs = orgs(acmeClients: acmeClients)
        let choice = OrgClassifier(orgHeader: "X-Smarthost-Org", orgs: orgs).classify(headerValue: header, sender: sender)
        return OrgTenancy(trust: trust, orgHeader: "X-Smarthost-Org", orgs: orgs).decide(choice: choice, sender: sender, client: client)
    }

    @Test func trustAnyLetsTheHeaderChooseAsBefore() {
        #expect(Self.decide(.any, header: "acme", sender: "nobody@evil.example") == .allowed)
        #expect(Self.decide(.any, header: "unknown-org", sender: "") == .allowed)
        #expect(OrgTenancy(trust: .any, orgHeader: "X", orgs: Self.orgs()).isOpen)
        #expect(!OrgTenancy(trust: .senders, orgHeader: "X", orgs: Self.orgs()).isOpen)
        #expect(!OrgTenancy(trust: .any, orgHeader: "X", orgs: Self.orgs(acmeClients: [.uid(1, user: nil)])).isOpen)
    }

    @Test func trustSendersNeedsASenderOfThatOrg() {
        #expect(Self.decide(.senders, header: "acme", sender: "robot@acme.example") == .allowed)
        // Domains compare without case, as the classifier does.
        #expect(Self.decide(.senders, header: "acme", sender: "robot@ACME.Example") == .allowed)
        #expect(Self.decide(.senders, header: "acme", sender: "robot-7@robots.example") == .allowed)
        #expect(Self.decide(.senders, header: "acme", sender: "nobody@evil.example") == .senderNotAllowed(org: "acme"))
        // Just outside each pattern: a subdomain, a lookalike, another local part.
        #expect(Self.decide(.senders, header: "acme", sender: "robot@sub.acme.example") == .senderNotAllowed(org: "acme"))
        #expect(Self.decide(.senders, header: "acme", sender: "robot@acme.example.evil") == .senderNotAllowed(org: "acme"))
        #expect(Self.decide(.senders, header: "acme", sender: "human-7@robots.example") == .senderNotAllowed(org: "acme"))
        // Another org's sender does not make a claim on acme good.
        #expect(Self.decide(.senders, header: "acme", sender: "alerts@globex.example") == .senderNotAllowed(org: "acme"))
        #expect(Self.decide(.senders, header: "globex", sender: "alerts@globex.example") == .allowed)
        // The null sender matches no pattern.
        #expect(Self.decide(.senders, header: "acme", sender: "") == .senderNotAllowed(org: "acme"))
    }

    @Test func trustSendersRefusesHeadersForOrgsWithoutSenders() {
        #expect(Self.decide(.senders, header: "initech", sender: "a@initech.example") == .senderNotAllowed(org: "initech"))
        #expect(Self.decide(.senders, header: "not-configured", sender: "a@acme.example") == .senderNotAllowed(org: "not-configured"))
    }

    @Test func trustSendersLeavesSenderAndHostLevelChoicesAlone() {
        // No header: the sender chose the org, which is the trusted path.
        #expect(Self.decide(.senders, header: nil, sender: "robot@acme.example") == .allowed)
        #expect(Self.decide(.senders, header: nil, sender: "nobody@evil.example") == .allowed)
        // A header value that cannot be an org id is ignored: classified by the sender.
        #expect(Self.decide(.senders, header: "acme corp", sender: "nobody@evil.example") == .allowed)
    }

    @Test func clientsRestrictAnOrgWhicheverWayItWasChosen() {
        let rules: [ClientRule] = [.block(try! CIDRBlock.parse("127.0.0.1").get()), .uid(1001, user: nil)]
        // By header and by sender, from a listed address: allowed.
        #expect(Self.decide(.any, header: "acme", sender: "x@y.example", acmeClients: rules) == .allowed)
        #expect(Self.decide(.senders, header: nil, sender: "a@acme.example", acmeClients: rules) == .allowed)
        // From the next address: refused, by header or by sender.
        #expect(Self.decide(.any, header: "acme", sender: "x@y.example", client: Self.other, acmeClients: rules)
                == .clientNotAllowed(org: "acme"))
        #expect(Self.decide(.any, header: nil, sender: "a@acme.example", client: Self.other, acmeClients: rules)
                == .clientNotAllowed(org: "acme"))
        #expect(Self.decide(.any, header: nil, sender: "a@acme.example", client: Self.v6, acmeClients: rules)
                == .clientNotAllowed(org: "acme"))
        // Orgs without clients and the host level: anyone.
        #expect(Self.decide(.any, header: "globex", sender: "", client: Self.other, acmeClients: rules) == .allowed)
        #expect(Self.decide(.any, header: nil, sender: "a@nowhere.example", client: Self.other, acmeClients: rules) == .allowed)
        // The sender rule comes first: a wrong sender from a wrong client is a sender refusal.
        #expect(Self.decide(.senders, header: "acme", sender: "x@evil.example", client: Self.other, acmeClients: rules)
                == .senderNotAllowed(org: "acme"))
    }

    @Test func blocksMatchAddressesAndMappedAddresses() {
        let block: [ClientRule] = [.block(try! CIDRBlock.parse("127.0.0.2/32").get())]
        #expect(Self.decide(.any, header: "acme", sender: "", client: Self.other, acmeClients: block) == .allowed)
        #expect(Self.decide(.any, header: "acme", sender: "", client: Self.mapped, acmeClients: block) == .allowed)
        #expect(Self.decide(.any, header: "acme", sender: "", client: Self.app, acmeClients: block) == .clientNotAllowed(org: "acme"))
        let v6: [ClientRule] = [.block(try! CIDRBlock.parse("::1").get())]
        #expect(Self.decide(.any, header: "acme", sender: "", client: Self.v6, acmeClients: v6) == .allowed)
        #expect(Self.decide(.any, header: "acme", sender: "", client: Self.app, acmeClients: v6) == .clientNotAllowed(org: "acme"))
    }

    @Test func uidRulesMatchOnlyUnixClientsWithThatUID() {
        let rules: [ClientRule] = [.uid(1001, user: nil), .uid(65534, user: "nobody")]
        #expect(Self.decide(.any, header: "acme", sender: "", client: .unix(uid: 1001), acmeClients: rules) == .allowed)
        #expect(Self.decide(.any, header: "acme", sender: "", client: .unix(uid: 65534), acmeClients: rules) == .allowed)
        for uid: UInt32? in [1000, 1002, 0, nil] {
            #expect(Self.decide(.any, header: "acme", sender: "", client: .unix(uid: uid), acmeClients: rules)
                    == .clientNotAllowed(org: "acme"))
        }
        // A TCP client never matches a uid rule, a Unix client never an address block.
        #expect(Self.decide(.any, header: "acme", sender: "", client: Self.app, acmeClients: rules) == .clientNotAllowed(org: "acme"))
        let everyone: [ClientRule] = [.block(try! CIDRBlock.parse("0.0.0.0/0").get()), .block(try! CIDRBlock.parse("::/0").get())]
        #expect(Self.decide(.any, header: "acme", sender: "", client: .unix(uid: 0), acmeClients: everyone) == .clientNotAllowed(org: "acme"))
    }

    @Test func repliesAre550WithTheOrgAndNoHeaderText() {
        let tenancy = OrgTenancy(trust: .senders, orgHeader: "X-Smarthost-Org", orgs: Self.orgs())
        let sender = tenancy.reply(for: .senderNotAllowed(org: "acme"), client: Self.app)
        #expect(sender?.code == 550 && sender?.enhanced == "5.7.1")
        #expect(sender?.text == "Error: the X-Smarthost-Org header names org acme, whose senders do not include this envelope sender")
        let client = tenancy.reply(for: .clientNotAllowed(org: "acme"), client: .unix(uid: 65534))
        #expect(client?.description == "550 5.7.1 Error: client uid=65534 may not send as org acme")
        #expect(tenancy.reply(for: .allowed, client: Self.app) == nil)
        // A configured id is shown as printable ASCII, at most 64 bytes.
        #expect(OrgTenancy.printable("ac\u{7f}mé") == "ac?m??")
        #expect(OrgTenancy.printable(String(repeating: "a", count: 100)).count == 64)
    }

    @Test func clientIdentityNamesTheClient() {
        #expect(Self.app.description == "127.0.0.1")
        #expect(ClientIdentity.unix(uid: 1001).description == "uid=1001")
        #expect(ClientIdentity.unix(uid: nil).description == "uid=unknown")
    }
}
