import Foundation
import Testing
@testable import SmarthostCore

/// A notice's size is bounded whatever the original was: the whole message only when it is
/// small, else its header (`text/rfc822-headers`), itself cut at a line boundary; each
/// notice parsed by Python's `email` package to prove it is valid MIME.
@Suite struct NoticeSizeTests {
    static let limit = NoticeOriginal.headerLimit

    static func plan(_ content: [UInt8], notices: String = "") throws -> NoticePlan {
        try #require(NoticePlan.failure(
            for: NoticePlanTests.envelope(), reason: "recipient refused", remoteMTA: "smtp.example.com",
            config: try NoticePlanTests.config(notices), content: content, nowUnixSeconds: 1_763_847_700, token: "t"))
    }

    /// `parse_dsn.py` on the notice's bytes.
    static func parsed(_ notice: DeliveryStatusNotice) throws -> NoticesEndToEndTests.Parsed {
        let received = UpstreamProcess.Received(content: String(decoding: notice.bytes, as: UTF8.self), mailFrom: "<>",
                                                recipients: [], tls: false)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notice-size-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try NoticesEndToEndTests.parse(received, in: directory)
    }

    /// `count` header fields of about 100 bytes each, every third one folded.
    static func bigHeader(bytes: Int) -> [UInt8] {
        var header = "From: App <app@acme.example>\r\nSubject: a very long header block\r\n"
        var index = 0
        while header.utf8.count < bytes {
            header += index % 3 == 0
                ? "X-Trace-\(index): " + String(repeating: "a", count: 40) + "\r\n\t" + String(repeating: "b", count: 40) + "\r\n"
                : "X-Trace-\(index): " + String(repeating: "c", count: 85) + "\r\n"
            index += 1
        }
        return Array(header.utf8)
    }

    @Test func aHugeHeaderBlockBecomesABoundedHeadersOnlyNotice() throws {
        let header = Self.bigHeader(bytes: 2_700_000)
        let plan = try Self.plan(header + Array("\r\nshort body\r\n".utf8))
        guard case .headers(let kept, let omitted) = plan.notice.original else {
            Issue.record("a 2.7 MB header is not returned whole: \(plan.notice.original)")
            return
        }
        #expect(kept.count <= Self.limit && kept.count > Self.limit - 200)
        #expect(omitted == header.count - kept.count)
        #expect(kept.suffix(2) == [13, 10], "cut at a line's end")
        #expect(kept.starts(with: header[..<kept.count]), "a prefix of the original")
        let next = header[kept.count]
        #expect(next != 32 && next != 9, "cut between fields, not inside a folded one")
        let bytes = plan.notice.bytes
        #expect(bytes.count < Self.limit + 4096, "the notice is \(bytes.count) bytes")
        let parsed = try Self.parsed(plan.notice)
        #expect(parsed.parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        #expect(parsed.defects.isEmpty, "\(parsed.defects)")
        #expect(parsed.human.contains("\(omitted) bytes were left out"), "\(parsed.human)")
        #expect(parsed.original_headers?.hasPrefix("From: App <app@acme.example>") == true)
        #expect(parsed.recipients.count == 2)
    }

    @Test func aTenMegabyteBodyIsNotReturned() throws {
        let header = Array("From: App <app@acme.example>\r\nSubject: big attachment\r\n".utf8)
        var body = [UInt8]()
        body.reserveCapacity(10 << 20)
        let line = Array((String(repeating: "QUJD", count: 19) + "\r\n").utf8)
        while body.count < 10 << 20 { body += line }
        let plan = try Self.plan(header + [13, 10] + body)
        #expect(plan.notice.original == .headers(header, omittedBytes: 0))
        let bytes = plan.notice.bytes
        #expect(bytes.count < 4096, "the notice is \(bytes.count) bytes")
        let parsed = try Self.parsed(plan.notice)
        #expect(parsed.parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        #expect(parsed.defects.isEmpty, "\(parsed.defects)")
        #expect(parsed.original_headers == "From: App <app@acme.example>\r\nSubject: big attachment\r\n"
            || parsed.original_headers == "From: App <app@acme.example>\nSubject: big attachment\n")
        #expect(!String(decoding: bytes, as: UTF8.self).contains("QUJD"))
        #expect(parsed.human.contains("the body is not returned"))
    }

    @Test func theBodyLimitAtAndPastIt() throws {
        let header = Array("Subject: at the limit\r\n".utf8)
        let atLimit = header + [13, 10] + [UInt8](repeating: UInt8(ascii: "x"), count: NoticeOriginal.bodyLimit - 2) + [13, 10]
        let at = try Self.plan(atLimit)
        #expect(at.notice.original == .message(atLimit))
        let whole = try Self.parsed(at.notice)
        #expect(whole.parts == ["text/plain", "message/delivery-status", "message/rfc822"])
        #expect(whole.defects.isEmpty, "\(whole.defects)")
        #expect(whole.returned_body?.count == NoticeOriginal.bodyLimit || whole.returned_body?.count == NoticeOriginal.bodyLimit - 1)
        let past = try Self.plan(header + [13, 10] + [UInt8](repeating: UInt8(ascii: "x"), count: NoticeOriginal.bodyLimit - 1) + [13, 10])
        #expect(past.notice.original == .headers(header, omittedBytes: 0))
    }

    @Test func theHeaderLimitAtAndPastIt() {
        let header = Self.bigHeader(bytes: 3 * Self.limit)
        let exact = NoticeOriginal.truncatedHeader(header, limit: header.count)
        #expect(exact == header, "a header at the limit is kept whole")
        let cut = NoticeOriginal.truncatedHeader(header, limit: Self.limit)
        #expect(cut.count <= Self.limit && cut.suffix(2) == [13, 10])
        // One folded field longer than the limit: cut at a line's end inside it.
        let folded = Array(("X-Long: " + String(repeating: "y", count: 50) + "\r\n"
            + String(repeating: "\t" + String(repeating: "z", count: 60) + "\r\n", count: 20)).utf8)
        let inside = NoticeOriginal.truncatedHeader(folded, limit: 300)
        #expect(inside.count <= 300 && inside.count > 200 && inside.suffix(2) == [13, 10])
        // A first line longer than the limit: nothing of it (and the notice says so).
        let oneLine = Array(("X-Line: " + String(repeating: "w", count: 500) + "\r\n").utf8)
        #expect(NoticeOriginal.truncatedHeader(oneLine, limit: 300).isEmpty)
        guard case .headers(let none, let omitted) = NoticeOriginal.choose(
            from: Array(("X-Line: " + String(repeating: "w", count: Self.limit + 10) + "\r\n\r\nx\r\n").utf8),
            withBody: true) else {
            Issue.record("an oversized header is never returned whole")
            return
        }
        #expect(none.isEmpty && omitted == Self.limit + 20)
    }

    @Test func aCopyForTheOperatorCarriesOnlyTheHeaderAndDelayWarningsToo() throws {
        let message = Array("Subject: private\r\n\r\nsecret body\r\n".utf8)
        let copied = try Self.plan(message, notices: "notices: { copy_to: postmaster@provider.example }")
        #expect(copied.recipients == ["app@acme.example", "postmaster@provider.example"])
        #expect(copied.notice.original == .headers(Array("Subject: private\r\n".utf8), omittedBytes: 0))
        let delay = try #require(NoticePlan.delay(
            for: NoticePlanTests.envelope(), reason: "451 4.4.1 later", remoteMTA: nil, config: try NoticePlanTests.config(),
            content: message, nowUnixSeconds: 1_763_847_700, token: "t"))
        #expect(delay.notice.original == .headers(Array("Subject: private\r\n".utf8), omittedBytes: 0))
        #expect(!String(decoding: delay.notice.bytes, as: UTF8.self).contains("secret body"))
    }

    @Test func an8BitMessageIsDeclared8Bit() throws {
        let plan = try Self.plan(Array("Subject: caf\u{e9}\r\n\r\ncr\u{e8}me br\u{fb}l\u{e9}e\r\n".utf8))
        let text = String(decoding: plan.notice.bytes, as: UTF8.self)
        #expect(text.contains("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"))
        #expect(try Self.parsed(plan.notice).defects.isEmpty)
    }

    @Test func aLongDiagnosticIsCutBelowTheLineLimit() throws {
        var envelope = NoticePlanTests.envelope()
        envelope.refusedRecipients["gone@example.com"] = "550 5.1.1 " + String(repeating: "\u{e9}", count: 2000)
        let plan = try #require(NoticePlan.failure(
            for: envelope, reason: "x", remoteMTA: nil, config: try NoticePlanTests.config(), content: nil,
            nowUnixSeconds: 1_763_847_700, token: "t"))
        let text = String(decoding: plan.notice.bytes, as: UTF8.self)
        let longest = text.components(separatedBy: "\r\n").map(\.utf8.count).max() ?? 0
        #expect(longest <= 998, "RFC 5322 §2.1.1: \(longest)")
        #expect(text.contains("Diagnostic-Code: smtp; 550 5.1.1 \u{e9}") && text.contains(" [...]"))
    }

    /// Below `min_free_space` inbound mail is refused, but a notice is still written, down
    /// to the notice reserve.
    @Test func aNoticeIsWrittenBelowTheInboundFloor() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let setup = try Spool(root: dir.root)
        let originalID = try SpoolTestData.storeOK(setup, SpoolTestData.message())
        setup.shutdown()
        let spool = try Spool(root: dir.root, minimumFreeBytes: UInt64.max / 4)
        #expect(throws: SpoolError.self) { _ = try spool.begin() }
        #expect(spool.noticeFloorBytes == Spool.noticeReserveBytes)
        var original = try spool.envelope(originalID)
        original.refusedRecipients = [original.recipients[0]: "550 5.1.1 no such user"]
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal)
        let plan = try #require(NoticePlan.failure(
            for: original, reason: "recipient refused", remoteMTA: nil, config: config,
            content: try spool.readMessage(originalID), nowUnixSeconds: 1_763_847_621, token: "t"))
        let (envelope, content) = try NoticeSpooler.commit(plan, resolvedFrom: original, config: config, spool: spool)
        #expect(try spool.readMessage(envelope.id) == content)
        #expect(dir.names("queue").contains(envelope.id.rawValue))
        let small = try Spool(root: dir.root, minimumFreeBytes: 4096)
        #expect(small.noticeFloorBytes == 4096, "never more than the configured floor")
        let zero = try Spool(root: dir.root, minimumFreeBytes: 0)
        #expect(zero.noticeFloorBytes == 0, "no floor configured: notices until the disk is full")
    }
}
