import Testing
@testable import SmarthostCore

@Suite struct ConfigCIDRBlockTests {
    private func block(_ text: String) -> CIDRBlock? {
        try? CIDRBlock.parse(text).get()
    }

    private func v4(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> UInt32 { a << 24 | b << 16 | c << 8 | d }

    private func v6(_ text: String) -> [UInt8] { CIDRBlock.ipv6Bytes(text)! }

    @Test func ipv4Blocks() {
        let loopback = block("127.0.0.0/8")!
        #expect(loopback.contains(ipv4: v4(127, 0, 0, 1)))
        #expect(loopback.contains(ipv4: v4(127, 255, 255, 254)))
        #expect(!loopback.contains(ipv4: v4(128, 0, 0, 1)))
        let odd = block("192.0.2.64/26")!
        #expect(odd.contains(ipv4: v4(192, 0, 2, 127)))
        #expect(!odd.contains(ipv4: v4(192, 0, 2, 128)))
        #expect(block("0.0.0.0/0")!.contains(ipv4: v4(8, 8, 8, 8)))
        #expect(block("10.1.2.3")!.description == "10.1.2.3/32")
        #expect(!loopback.contains(ipv6: v6("::1")))
    }

    @Test func ipv6Blocks() {
        let loopback = block("::1/128")!
        #expect(loopback.contains(ipv6: v6("::1")))
        #expect(!loopback.contains(ipv6: v6("::2")))
        #expect(!loopback.contains(ipv4: v4(127, 0, 0, 1)))
        let doc = block("2001:DB8::/32")!
        #expect(doc.description == "2001:db8::/32")
        #expect(doc.contains(ipv6: v6("2001:db8:ffff::1")))
        #expect(!doc.contains(ipv6: v6("2001:db9::1")))
        #expect(block("fd00::/8")!.contains(ipv6: v6("fdab:cd::1")))
        #expect(!doc.contains(ipv6: [1, 2, 3]))
    }

    @Test func ipv4MappedClientsMatchIPv4Rules() {
        let access = RelayConfig.Access()  // the default 127.0.0.0/8 and ::1/128
        #expect(access.allows(ipv6: v6("::ffff:127.0.0.1")))
        #expect(!access.allows(ipv6: v6("::ffff:10.0.0.1")))
        #expect(access.allows(ipv4: v4(127, 0, 0, 1)))
        #expect(access.allows(ipv6: v6("::1")))
        #expect(!access.allows(ipv4: v4(192, 168, 1, 1)))
        #expect(!access.allows(ipv6: v6("2001:db8::1")))
        // A mapped block in the config is an IPv4 block.
        let mapped = block("::ffff:10.0.0.0/104")!
        #expect(mapped.description == "10.0.0.0/8")
        #expect(mapped.contains(ipv4: v4(10, 9, 8, 7)))
        #expect(mapped.contains(ipv6: v6("::ffff:10.1.1.1")))
    }

    @Test func parseErrors() {
        #expect(CIDRBlock.parse("10.0.0.0/33") == .failure(.badPrefix(max: 32)))
        #expect(CIDRBlock.parse("::/129") == .failure(.badPrefix(max: 128)))
        #expect(CIDRBlock.parse("10.0.0.0/") == .failure(.badPrefix(max: 32)))
        #expect(CIDRBlock.parse("10.0.0.1/8") == .failure(.hostBitsSet(suggestion: "10.0.0.0/8")))
        #expect(CIDRBlock.parse("localhost") == .failure(.notAnAddress))
        #expect(CIDRBlock.parse("256.0.0.0/8") == .failure(.notAnAddress))
        #expect(CIDRBlock.parse("010.0.0.0/8") == .failure(.notAnAddress))
    }

    @Test func ipv6Literals() {
        #expect(CIDRBlock.ipv6Bytes("::") == [UInt8](repeating: 0, count: 16))
        #expect(CIDRBlock.ipv6Bytes("1::")?.first == 0 && CIDRBlock.ipv6Bytes("1::")?[1] == 1)
        #expect(CIDRBlock.ipv6Bytes("1:2:3:4:5:6:7:8")?.last == 8)
        #expect(CIDRBlock.ipv6Bytes("::ffff:1.2.3.4")?.suffix(4) == [1, 2, 3, 4])
        #expect(CIDRBlock.ipv6Bytes("1:2:3:4:5:6:7:8:9") == nil)
        #expect(CIDRBlock.ipv6Bytes("1::2::3") == nil)
        #expect(CIDRBlock.ipv6Bytes("12345::") == nil)
        #expect(CIDRBlock.ipv6Bytes("fe80::1%eth0") == nil)
        #expect(CIDRBlock.ipv6Bytes("1:2:3:4:5:6:7::8") == nil)
        #expect(CIDRBlock.formatIPv6(v6("2001:db8:0:0:1:0:0:1")) == "2001:db8::1:0:0:1")
    }

    @Test func listenAddressParsing() {
        #expect(ListenAddress.parse("127.0.0.1:25") == ListenAddress(host: "127.0.0.1", port: 25, isIPv6: false))
        #expect(ListenAddress.parse("[::1]:25") == ListenAddress(host: "::1", port: 25, isIPv6: true))
        #expect(ListenAddress.parse("[::1]:25")?.description == "[::1]:25")
        #expect(ListenAddress.parse("127.0.0.1") == nil)
        #expect(ListenAddress.parse("127.0.0.1:0") == nil)
        #expect(ListenAddress.parse("127.0.0.1:65536") == nil)
        #expect(ListenAddress.parse("[]:25") == nil)
        #expect(ListenAddress.parse("localhost:25") == nil)
        #expect(ListenAddress.parse("[127.0.0.1]:25") == nil)
    }
}
