import Testing
@testable import SmarthostCore

/// What `sendmail` makes of a program's message, and of its envelope.
@Suite struct SubmissionMessageTests {
    static let identity = LocalIdentity(userName: "cron", fullName: "Cron Daemon", hostName: "host.example")
    static let date = "Sat, 22 Nov 2025 21:40:21 +0000"

    static func defaults(from: String = "cron@host.example", name: String? = nil) -> SubmittedMessage.Defaults {
        .init(from: UpstreamFromAddress(address: from, displayName: name), unixSeconds: 1_763_847_621,
              domain: "host.example", uniqueToken: "abc")
    }

    static func text(_ message: SubmittedMessage) -> String { String(decoding: message.content, as: UTF8.self) }

    @Test func lineFeedsBecomeCRLFAndMissingFieldsAreAdded() {
        let message = SubmittedMessage(input: Array("Subject: hi\nTo: a@example.com\n\nbody\nline two".utf8),
                                       ignoreDots: true, extractRecipients: false, defaults: Self.defaults(name: "Cron Daemon"))
        #expect(Self.text(message) == "Subject: hi\r\nTo: a@example.com\r\nFrom: Cron Daemon <cron@host.example>\r\n"
            + "Date: \(Self.date)\r\nMessage-ID: <1763847621.abc@host.example>\r\n\r\nbody\r\nline two\r\n")
        #expect(message.headerRecipients.isEmpty, "without -t the header names no recipients")
    }

    @Test func presentFieldsAreKeptWhateverTheirCase() {
        let input = "FROM: me@x.example\r\ndate: Mon, 1 Jan 2024 00:00:00 +0000\r\nmessage-id: <m@x>\r\n\r\nb\r\n"
        let message = SubmittedMessage(input: Array(input.utf8), ignoreDots: true, extractRecipients: false, defaults: Self.defaults())
        #expect(Self.text(message) == input)
    }

    @Test func extractRecipientsFromToCcBccAndDropBcc() {
        let input = "To: Ann <ann@example.com>,\n \"Doe, Bob\" <bob@example.com>\nCc: team: c@example.com, d@example.com;\n"
            + "Bcc: hidden@example.com (secret)\nSubject: x\n\nbody\n"
        let message = SubmittedMessage(input: Array(input.utf8), ignoreDots: true, extractRecipients: true, defaults: Self.defaults())
        #expect(message.headerRecipients == ["ann@example.com", "bob@example.com", "c@example.com", "d@example.com", "hidden@example.com"])
        #expect(!Self.text(message).contains("Bcc") && !Self.text(message).contains("hidden"))
        #expect(Self.text(message).hasPrefix("To: Ann <ann@example.com>,\r\n \"Doe, Bob\" <bob@example.com>\r\nCc: team:"))
    }

    @Test func bccIsRemovedEvenWithoutExtraction() {
        let message = SubmittedMessage(input: Array("Bcc: x@example.com\n  y@example.com\nSubject: s\n\nb\n".utf8),
                                       ignoreDots: true, extractRecipients: false, defaults: Self.defaults())
        #expect(!Self.text(message).contains("example.com\r\n  y"))
        #expect(Self.text(message).hasPrefix("Subject: s\r\n"))
    }

    @Test func aDotLineEndsTheInputUnlessIgnoringDots() {
        let input = Array("Subject: s\n\nfirst\n.\nafter\n".utf8)
        let stops = SubmittedMessage(input: input, ignoreDots: false, extractRecipients: false, defaults: Self.defaults())
        #expect(Self.text(stops).hasSuffix("\r\n\r\nfirst\r\n"))
        let goesOn = SubmittedMessage(input: input, ignoreDots: true, extractRecipients: false, defaults: Self.defaults())
        #expect(Self.text(goesOn).hasSuffix("\r\n\r\nfirst\r\n.\r\nafter\r\n"))
    }

    @Test func bodyWithoutHeaderGetsTheSeparatorAndAnMboxFromLineGoes() {
        let message = SubmittedMessage(input: Array("From someone Sat Nov 22 2025\nJust a body line.\nSecond: not a header\n".utf8),
                                       ignoreDots: true, extractRecipients: false, defaults: Self.defaults())
        #expect(Self.text(message) == "From: cron@host.example\r\nDate: \(Self.date)\r\nMessage-ID: <1763847621.abc@host.example>\r\n"
            + "\r\nJust a body line.\r\nSecond: not a header\r\n")
    }

    @Test func mailParametersFollowTheContentAndTheAddresses() {
        let ascii = SMTPSubmission.Envelope(sender: "a@example.com", recipients: ["b@example.com"])
        #expect(SMTPSubmission.mailParameters(content: Array("plain\r\n".utf8), envelope: ascii) == "")
        #expect(SMTPSubmission.mailParameters(content: Array("café\r\n".utf8), envelope: ascii) == " BODY=8BITMIME")
        let utf8 = SMTPSubmission.Envelope(sender: "a@example.com", recipients: ["jürgen@example.com"])
        #expect(SMTPSubmission.mailParameters(content: Array("x\r\n".utf8), envelope: utf8) == " SMTPUTF8")
    }

    @Test func addressLists() {
        #expect(AddressList.addresses(in: "a@x, b@y") == ["a@x", "b@y"])
        #expect(AddressList.addresses(in: "\"Last, First\" <f@x> (comment, with comma), <g@y>") == ["f@x", "g@y"])
        #expect(AddressList.addresses(in: "undisclosed-recipients:;") == [])
        #expect(AddressList.addresses(in: "  ") == [])
        #expect(AddressList.addresses(in: "root") == ["root"])
        #expect(AddressList.addresses(in: "\"quoted local\"@x") == ["\"quoted local\"@x"])
    }

    @Test func envelopeFromArgumentsAndHeader() throws {
        var arguments = SendmailArguments()
        arguments.extractRecipients = true
        arguments.recipients = ["root", "ops@example.com, dup@example.com"]
        let input = Array("To: DUP@example.com, new@example.com\n\nb\n".utf8)
        let submission = try SendmailSubmission(arguments: arguments, input: input, identity: Self.identity,
                                                unixSeconds: 0, uniqueToken: "t")
        // Bare local parts stay bare: the relay qualifies them with its `hostname:`, which
        // a caller who may not read the configuration cannot know (it pinned host.example,
        // the system host name, before hostname qualification moved into the relay).
        #expect(submission.envelope.sender == "cron")
        #expect(submission.envelope.recipients == ["root", "ops@example.com", "dup@example.com", "new@example.com"])
        #expect(String(decoding: submission.content, as: UTF8.self).contains("From: Cron Daemon <cron>\r\n"))
    }

    @Test func senderOptions() throws {
        var arguments = SendmailArguments()
        arguments.recipients = ["a@example.com"]
        arguments.sender = "<>"
        arguments.fullName = "Robot"
        let null = try SendmailSubmission(arguments: arguments, input: [], identity: Self.identity, unixSeconds: 0, uniqueToken: "t")
        #expect(null.envelope.sender == "")
        #expect(String(decoding: null.content, as: UTF8.self).hasPrefix("From: Robot <cron>\r\n"))
        arguments.sender = "app"
        let local = try SendmailSubmission(arguments: arguments, input: [], identity: Self.identity, unixSeconds: 0, uniqueToken: "t")
        #expect(local.envelope.sender == "app", "qualified by the relay, as root is")
        arguments.sender = "<app@acme.example>"
        let full = try SendmailSubmission(arguments: arguments, input: [], identity: Self.identity, unixSeconds: 0, uniqueToken: "t")
        #expect(full.envelope.sender == "app@acme.example")
    }

    @Test func badAddressesAndNoRecipients() {
        var arguments = SendmailArguments()
        #expect(throws: SubmissionFailure.usage("no recipients given (name them, or use -t to read To:, Cc:, Bcc:)")) {
            try SendmailSubmission(arguments: arguments, input: [], identity: Self.identity, unixSeconds: 0, uniqueToken: "t")
        }
        arguments.extractRecipients = true
        #expect(performing: {
            try SendmailSubmission(arguments: arguments, input: Array("Subject: x\n\n".utf8), identity: Self.identity,
                                   unixSeconds: 0, uniqueToken: "t")
        }, throws: { ($0 as? SubmissionFailure)?.exitCode == 65 })
        arguments.recipients = ["a@example.com>\r\nRCPT TO:<evil@example.com"]
        #expect(performing: {
            try SendmailSubmission(arguments: arguments, input: [], identity: Self.identity, unixSeconds: 0, uniqueToken: "t")
        }, throws: { ($0 as? SubmissionFailure)?.exitCode == 64 })
        arguments.recipients = ["a@example.com"]
        arguments.sender = "bad address@"
        #expect(performing: {
            try SendmailSubmission(arguments: arguments, input: [], identity: Self.identity, unixSeconds: 0, uniqueToken: "t")
        }, throws: { ($0 as? SubmissionFailure)?.exitCode == 64 })
    }

    @Test func targetFromOptionEnvironmentConfigOrDefault() throws {
        #expect(try SubmissionTarget.resolve(option: "127.0.0.1:2525", environment: [:], configPath: "/nonexistent")
            == SubmissionTarget(host: "127.0.0.1", port: 2525))
        #expect(try SubmissionTarget.resolve(option: nil, environment: ["SMARTHOST_SUBMIT": "[::1]:26"], configPath: "/nonexistent")
            == SubmissionTarget(host: "::1", port: 26))
        #expect(try SubmissionTarget.resolve(option: nil, environment: [:], configPath: "/nonexistent") == .defaultTarget)
        #expect(SubmissionTarget.parse("relay.internal") == SubmissionTarget(host: "relay.internal", port: 25))
        #expect(SubmissionTarget.parse("relay.internal:x") == nil)
        let keys = try ConfigKeys.parse(yaml: """
            listen: ["0.0.0.0:2525", "[::1]:25"]
            spool: /var/lib/smarthost/spool
            default: { host: smtp.example.com, password_env: NOT_SET_ANYWHERE }
            """, source: "t.yaml")
        #expect(keys.listen.map(\.description) == ["0.0.0.0:2525", "[::1]:25"])
        #expect(keys.spool == "/var/lib/smarthost/spool")
        #expect(throws: SubmissionFailure.self) { try ConfigKeys.parse(yaml: "listen: [\"localhost:25\"]", source: "t.yaml") }
        #expect(throws: SubmissionFailure.self) { try ConfigKeys.parse(yaml: "listen: [", source: "t.yaml") }
    }
}
