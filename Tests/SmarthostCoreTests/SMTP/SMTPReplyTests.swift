import Testing
@testable import SmarthostCore

@Suite struct SMTPReplyTests {
    @Test func singleLineWireFormat() {
        let reply = SMTPReply(250, "2.0.0", "Ok")
        #expect(reply.wireBytes == Array("250 2.0.0 Ok\r\n".utf8))
    }

    @Test func multiLineUsesDashOnAllButLast() {
        let reply = SMTPReply(code: 250, enhanced: nil, lines: ["relay", "PIPELINING", "SIZE 100"])
        #expect(String(decoding: reply.wireBytes, as: UTF8.self) == "250-relay\r\n250-PIPELINING\r\n250 SIZE 100\r\n")
    }
}
