import Testing
@testable import SmarthostCore

/// sendmail(1)'s command line as real callers write it.
@Suite struct SubmissionSendmailArgumentsTests {
    private func parse(_ arguments: [String]) throws -> SendmailArguments {
        try SendmailArguments.parse(arguments)
    }

    @Test func realCallers() throws {
        // cron (Debian): MAILCMD "-FCronDaemon -i -B8BITMIME -oem".
        let cron = try parse(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"])
        #expect(cron.fullName == "CronDaemon" && cron.ignoreDots && cron.recipients == ["root"] && cron.mode == .deliver)
        // PHP mail(): sendmail_path "sendmail -t -i".
        let php = try parse(["-t", "-i"])
        #expect(php.extractRecipients && php.ignoreDots && php.recipients.isEmpty)
        // git send-email: "-i", then the envelope sender and recipients.
        let git = try parse(["-i", "-f", "dev@acme.example", "a@example.com", "b@example.com"])
        #expect(git.sender == "dev@acme.example" && git.recipients == ["a@example.com", "b@example.com"])
        // Symfony/Laravel: "-bs".
        #expect(try parse(["-bs"]).mode == .smtp)
        // mailx: "-i -- rcpt".
        let mailx = try parse(["-i", "--", "ops@example.com"])
        #expect(mailx.ignoreDots && mailx.recipients == ["ops@example.com"])
    }

    @Test func optionValuesAttachedOrSeparateAndCombinedFlags() throws {
        #expect(try parse(["-fme@x.example"]).sender == "me@x.example")
        #expect(try parse(["-f", "me@x.example"]).sender == "me@x.example")
        #expect(try parse(["-r", "me@x.example"]).sender == "me@x.example")
        #expect(try parse(["-F", "Full Name"]).fullName == "Full Name")
        let combined = try parse(["-ti"])
        #expect(combined.extractRecipients && combined.ignoreDots)
        #expect(try parse(["-tf", "me@x.example"]).sender == "me@x.example")
        #expect(try parse(["-oi"]).ignoreDots)
        #expect(try parse(["-o", "i"]).ignoreDots)
        #expect(try parse(["-f", ""]).sender == "")
    }

    @Test func optionsAfterRecipientsAndDoubleDash() throws {
        let permuted = try parse(["a@example.com", "-f", "me@x.example", "b@example.com"])
        #expect(permuted.sender == "me@x.example" && permuted.recipients == ["a@example.com", "b@example.com"])
        let ended = try parse(["--", "-weird@example.com"])
        #expect(ended.recipients == ["-weird@example.com"])
    }

    @Test func acceptedAndIgnored() throws {
        let ignored = try parse(["-odi", "-oem", "-oQ/var/spool", "-N", "never", "-B", "8BITMIME", "-n", "-U",
                                 "-V", "envid", "-R", "hdrs", "-X", "/tmp/log", "-h", "3", "-G", "-m", "-x", "rcpt@example.com"])
        var expected = SendmailArguments()
        expected.recipients = ["rcpt@example.com"]
        #expect(ignored == expected)
        // -v is no longer ignored: it makes sendmail say where a message went (maildrop).
        #expect(try parse(["-v", "rcpt@example.com"]).verbose)
    }

    @Test func modes() throws {
        #expect(try parse(["-bp"]).mode == .listQueue)
        #expect(try parse(["-bm", "a@example.com"]).mode == .deliver)
        #expect(try parse(["-bi"]).mode == .nothing)
        #expect(try parse(["-C", "/etc/x.yaml"]).configPath == "/etc/x.yaml")
        #expect(try parse(["--config", "/etc/y.yaml"]).configPath == "/etc/y.yaml")
        #expect(try parse(["--config=/etc/z.yaml"]).configPath == "/etc/z.yaml")
        #expect(try parse(["--submit", "127.0.0.1:2525"]).submitAddress == "127.0.0.1:2525")
    }

    @Test func usageErrors() {
        #expect(throws: SendmailArguments.UsageError("illegal option -- Z")) { try parse(["-Z"]) }
        #expect(throws: SendmailArguments.UsageError("option requires an argument -- f")) { try parse(["-f"]) }
        #expect(throws: SendmailArguments.UsageError.self) { try parse(["-bd"]) }
        #expect(throws: SendmailArguments.UsageError.self) { try parse(["-q"]) }
        #expect(throws: SendmailArguments.UsageError("unknown option --verbose")) { try parse(["--verbose"]) }
    }
}
