import Testing
@testable import SmarthostCore

@Suite struct SMTPReceivedHeaderTests {
    @Test func rfc5322DatesInUTC() {
        #expect(ReceivedHeader.rfc5322Date(unixSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(ReceivedHeader.rfc5322Date(unixSeconds: 1_763_847_621) == "Sat, 22 Nov 2025 21:40:21 +0000")
        #expect(ReceivedHeader.rfc5322Date(unixSeconds: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 +0000")
        #expect(ReceivedHeader.rfc5322Date(unixSeconds: 4_102_444_799) == "Thu, 31 Dec 2099 23:59:59 +0000")
    }

    @Test func singleRecipientGetsAForClause() {
        let header = ReceivedHeader(heloName: "app.local", clientAddress: "127.0.0.1", hostname: "relay.test",
                                    withProtocol: .esmtp, recipient: MailPath(localPart: "u", domain: "example.com"),
                                    date: "Sat, 22 Nov 2025 21:40:21 +0000")
        #expect(String(decoding: header.bytes, as: UTF8.self) ==
            "Received: from app.local ([127.0.0.1])\r\n\tby relay.test (smarthost) with ESMTP\r\n\tfor <u@example.com>; Sat, 22 Nov 2025 21:40:21 +0000\r\n")
    }

    @Test func severalRecipientsAndIPv6() {
        let header = ReceivedHeader(heloName: "[IPv6:::1]", clientAddress: "::1", hostname: "relay.test",
                                    withProtocol: .utf8smtp, recipient: nil, date: "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(String(decoding: header.bytes, as: UTF8.self) ==
            "Received: from [IPv6:::1] ([IPv6:::1])\r\n\tby relay.test (smarthost) with UTF8SMTP; Thu, 01 Jan 1970 00:00:00 +0000\r\n")
    }

    @Test func unixSocketClientIsNamedByItsUID() {
        let header = ReceivedHeader(heloName: "robot.local", clientAddress: "uid=1001", hostname: "relay.test",
                                    withProtocol: .esmtp, recipient: nil, date: "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(String(decoding: header.bytes, as: UTF8.self) ==
            "Received: from robot.local (uid=1001)\r\n\tby relay.test (smarthost) with ESMTP; Thu, 01 Jan 1970 00:00:00 +0000\r\n")
    }
}
