import Testing
@testable import SmarthostCore

/// `hostname:` and `aliases:` as the envelope sees them: qualification of bare local parts,
/// which addresses are this host's, recursive aliases, duplicates, and the load-time loop check.
@Suite struct RoutingLocalAddressingTests {
    static let addressing = LocalAddressing(hostname: "box.example", otherLocalDomains: ["debian-host"], aliases: [
        "root": ["ops@example.com"],
        "postmaster": ["root"],
        "abuse": ["postmaster@localhost", "abuse-desk@example.net"],
        "www-data": ["web@example.com", "ops@example.com"],
        "keep": ["keep", "copy@example.com"],
        "\"odd name\"": ["odd@example.com"],
    ])

    @Test func bareLocalPartsGetTheHostnameAndNothingElseChanges() {
        let a = Self.addressing
        #expect(a.qualify("root") == "root@box.example")
        #expect(a.qualify("www-data") == "www-data@box.example")
        #expect(a.qualify("ops@example.com") == "ops@example.com")
        #expect(a.qualify("") == "", "the null sender stays null")
        #expect(a.qualify("\"a@b\"") == "\"a@b\"@box.example", "an @ inside a quoted local part is not a domain")
        #expect(a.qualify("\"a@b\"@x.example") == "\"a@b\"@x.example")
    }

    @Test func thisHostsAddressesAreBareOrAtItsNames() {
        let a = Self.addressing
        #expect(a.localPart(of: "root") == "root")
        #expect(a.localPart(of: "root@box.example") == "root")
        #expect(a.localPart(of: "root@BOX.Example") == "root", "domains compare in lower case")
        #expect(a.localPart(of: "root@localhost") == "root")
        #expect(a.localPart(of: "root@debian-host") == "root", "the system host name is this host too")
        #expect(a.localPart(of: "root@example.com") == nil)
        #expect(a.localPart(of: "root@sub.box.example") == nil)
        #expect(a.localPart(of: "") == nil)
    }

    @Test func aliasesApplyRecursivelyToLocalRecipientsOnly() {
        let a = Self.addressing
        #expect(a.recipients(["root"]) == ["ops@example.com"])
        #expect(a.recipients(["Root@box.example"]) == ["ops@example.com"], "keys compare in lower case")
        #expect(a.recipients(["postmaster"]) == ["ops@example.com"], "postmaster → root → ops")
        #expect(a.recipients(["Postmaster"]) == ["ops@example.com"], "RCPT TO:<Postmaster> is aliased too")
        #expect(a.recipients(["abuse@localhost"]) == ["ops@example.com", "abuse-desk@example.net"])
        #expect(a.recipients(["root@example.com"]) == ["root@example.com"], "another domain's root is not ours")
        #expect(a.recipients(["nobody"]) == ["nobody@box.example"], "an unaliased local part goes out qualified")
        #expect(a.recipients(["\"odd name\""]) == ["odd@example.com"])
        #expect(a.recipients(["\"Root\""]) == ["ops@example.com"], "quotes are not part of the key")
    }

    @Test func aNameListingItselfKeepsItsAddress() {
        #expect(Self.addressing.recipients(["keep"]) == ["keep@box.example", "copy@example.com"])
    }

    @Test func duplicatesAreDroppedCaseInsensitivelyFirstKept() {
        let a = Self.addressing
        #expect(a.recipients(["root", "www-data", "OPS@example.com", "web@example.com"]) == ["ops@example.com", "web@example.com"])
        #expect(a.recipients(["x@example.com", "X@Example.com", "y"]) == ["x@example.com", "y@box.example"])
    }

    @Test func cyclesAreFoundAndSelfReferencesAreNot() {
        let local: Set<String> = ["box.example", "localhost"]
        #expect(LocalAddressing.cycle(in: ["a": ["b"], "b": ["a"]], localDomains: local) == ["a", "b", "a"])
        #expect(LocalAddressing.cycle(in: ["a": ["b@localhost"], "b": ["c", "x@example.com"], "c": ["A@box.example"]],
                                      localDomains: local) == ["a", "b", "c", "a"])
        #expect(LocalAddressing.cycle(in: ["root": ["root", "ops@example.com"]], localDomains: local) == nil)
        #expect(LocalAddressing.cycle(in: ["a": ["b"], "b": ["c"], "c": ["x@example.com"]], localDomains: local) == nil)
        #expect(LocalAddressing.cycle(in: ["a": ["b@example.com"], "b": ["a"]], localDomains: local) == nil,
                "b@example.com is another domain's b")
    }

    @Test func clientsOnThisHost() {
        #expect(ClientIdentity.unix(uid: 33).isOnThisHost(localAddress: nil))
        #expect(ClientIdentity.address(bytes: [127, 0, 0, 1], text: "127.0.0.1").isOnThisHost(localAddress: nil))
        #expect(ClientIdentity.address(bytes: [127, 1, 2, 3], text: "127.1.2.3").isOnThisHost(localAddress: nil))
        let v6Loopback = [UInt8](repeating: 0, count: 15) + [1]
        #expect(ClientIdentity.address(bytes: v6Loopback, text: "::1").isOnThisHost(localAddress: nil))
        let mapped = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 127, 0, 0, 1]
        #expect(ClientIdentity.address(bytes: mapped, text: "::ffff:127.0.0.1").isOnThisHost(localAddress: nil))
        let lan: [UInt8] = [10, 0, 0, 5]
        #expect(!ClientIdentity.address(bytes: lan, text: "10.0.0.5").isOnThisHost(localAddress: [10, 0, 0, 1]))
        #expect(ClientIdentity.address(bytes: lan, text: "10.0.0.5").isOnThisHost(localAddress: lan),
                "a program here connecting to our own interface address")
        let mappedLAN = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 5]
        #expect(!ClientIdentity.address(bytes: mappedLAN, text: "::ffff:10.0.0.5").isOnThisHost(localAddress: nil))
    }
}
