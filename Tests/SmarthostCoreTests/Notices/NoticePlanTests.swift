import Testing
@testable import SmarthostCore

/// Who gets a notice and what it says, as values.
@Suite struct NoticePlanTests {
    static func config(_ notices: String = "", orgs: String = "") throws -> RelayConfig {
        try ConfigTestSupport.parse(ConfigTestSupport.minimal + "\n" + notices + "\n" + orgs)
    }

    static func envelope(sender: String = "app@acme.example", org: String? = nil) -> SpoolEnvelope {
        var envelope = SpoolEnvelope(id: SpoolID("1k1pyt96mqh0008vfa")!, receivedAt: 1_763_847_621, sender: sender,
                                     recipients: ["ok@example.com", "gone@example.com", "late@example.com"], org: org,
                                     heloName: "app.local", clientAddress: "127.0.0.1")
        envelope.doneRecipients = ["ok@example.com"]
        envelope.refusedRecipients = ["gone@example.com": "550 5.1.1 no such user"]
        return envelope
    }

    @Test func recipientsFollowTheRules() throws {
        let plain = try Self.config()
        #expect(NoticePlan.recipients(for: Self.envelope(), config: plain) == ["app@acme.example"])
        #expect(NoticePlan.recipients(for: Self.envelope(sender: ""), config: plain).isEmpty, "never the null sender")
        let copies = try Self.config("notices: { copy_to: postmaster@provider.example }", orgs: """
            orgs:
              acme:
                use: default
                notices: { copy_to: it@acme.example }
            """)
        #expect(NoticePlan.recipients(for: Self.envelope(org: "acme"), config: copies) == ["app@acme.example", "it@acme.example"])
        #expect(NoticePlan.recipients(for: Self.envelope(), config: copies) == ["app@acme.example", "postmaster@provider.example"])
        #expect(NoticePlan.recipients(for: Self.envelope(sender: ""), config: copies).isEmpty, "a notice's failure makes none")
        let off = try Self.config("notices: { bounce_sender: false }")
        #expect(NoticePlan.recipients(for: Self.envelope(), config: off).isEmpty)
    }

    @Test func failureNoticeHasABlockPerUndeliveredRecipient() throws {
        let plan = try #require(NoticePlan.failure(
            for: Self.envelope(), reason: "expired after 5d0h in the queue; last error: 451 4.4.1 no answer",
            remoteMTA: "smtp.example.com", config: try Self.config(),
            content: Array("Subject: hi\r\nX-Smarthost-Org: acme\r\n\r\nbody\r\n".utf8), nowUnixSeconds: 1_763_847_700, token: "t"))
        #expect(plan.recipients == ["app@acme.example"])
        let blocks = plan.notice.recipients
        #expect(blocks.map(\.address) == ["gone@example.com", "late@example.com"])
        #expect(blocks.map(\.status) == ["5.1.1", "5.0.0"])
        #expect(blocks[1].diagnostic.hasPrefix("expired after"))
        // Small, and to the sender alone: the whole message comes back, without the org header.
        #expect(plan.notice.original == .message(Array("Subject: hi\r\n\r\nbody\r\n".utf8)), "org header removed")
        let text = String(decoding: plan.notice.bytes, as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"1k1pyt96mqh0008vfa/t\""))
        #expect(text.contains("\r\nFinal-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            + "Remote-MTA: dns; smtp.example.com\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"))
        #expect(text.contains("Content-Type: message/rfc822\r\n\r\nSubject: hi\r\n\r\nbody\r\n\r\n--1k1pyt96mqh0008vfa/t--\r\n"))
    }

    @Test func delayWarningIsDueOnceTheAgePassesAndNeverForTheNullSender() throws {
        let config = try Self.config("notices: { delay_warning: 4h }")
        let received: Int64 = 1_763_847_621 * 1000
        #expect(!NoticePlan.delayWarningDue(for: Self.envelope(), config: config, nowMilliseconds: received + 4 * 3_600_000 - 1))
        #expect(NoticePlan.delayWarningDue(for: Self.envelope(), config: config, nowMilliseconds: received + 4 * 3_600_000))
        #expect(!NoticePlan.delayWarningDue(for: Self.envelope(sender: ""), config: config, nowMilliseconds: received + 5 * 3_600_000))
        #expect(!NoticePlan.delayWarningDue(for: Self.envelope(), config: try Self.config(), nowMilliseconds: received + 99 * 3_600_000),
                "off by default")
        for off in ["0", "off"] {
            #expect(try Self.config("notices: { delay_warning: \(off) }").notices.delayWarningMs == 0)
        }
        let delay = try #require(NoticePlan.delay(for: Self.envelope(), reason: "450 4.2.0 mailbox busy", remoteMTA: nil,
                                                  config: config, content: nil, nowUnixSeconds: 0, token: "t"))
        #expect(delay.notice.recipients.map(\.address) == ["late@example.com"], "the pending recipients")
        #expect(delay.notice.recipients.map(\.status) == ["4.2.0"])
    }

    @Test func checkConfigShowsTheNoticeSettings() throws {
        let text = ConfigReport.render(try Self.config("notices: { delay_warning: 4h, copy_to: pm@provider.example }", orgs: """
            orgs:
              acme:
                use: default
                notices: { copy_to: it@acme.example }
            """))
        #expect(text.contains("notices: failure notice to the sender, delay warning after 4h, copies to pm@provider.example, "
            + "org acme copies to it@acme.example\n"), "\(text)")
        #expect(text.contains("bare_lf normalize"))
    }

    @Test func statusCodes() {
        #expect(DeliveryStatusNotice.status(in: "550 5.7.1 relay denied", kind: .failure) == "5.7.1")
        #expect(DeliveryStatusNotice.status(in: "550 relay denied", kind: .failure) == "5.0.0")
        #expect(DeliveryStatusNotice.status(in: "connection refused", kind: .delay) == "4.0.0")
        #expect(DeliveryStatusNotice.status(in: "451 4.3.0 later", kind: .failure) == "5.0.0", "a failure is class 5")
    }

    @Test func configErrors() {
        #expect(throws: ConfigErrors.self) { try Self.config("notices: { copy_to: not an address }") }
        #expect(throws: ConfigErrors.self) { try Self.config("notices: { bounce: true }") }
        #expect(throws: ConfigErrors.self) {
            try Self.config(orgs: "orgs:\n  acme:\n    use: default\n    notices: { delay_warning: 1h }")
        }
    }
}
