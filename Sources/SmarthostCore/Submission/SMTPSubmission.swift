/// One message submitted to the relay over SMTP, as `sendmail` does it: EHLO, MAIL, RCPT
/// per recipient, DATA, QUIT. Postfix's sendmail hands the message to its own queue and
/// reports recipient problems later as bounces; this one asks the relay at once, so a
/// permanent refusal (`5xx`) is the exit status; only a relay that cannot take the
/// message now sends it to the maildrop (`SendmailCommand`). The maildrop pickup speaks
/// the same dialogue to the relay's inbound session in memory.
///
/// Recipients are all or nothing per transaction: a 4xx or 5xx to any RCPT abandons the
/// transaction before DATA (exit 75 or 65), so a caller that retries never duplicates
/// mail to the recipients that were fine. The one exception is `452 4.5.3` (too many
/// recipients), which RFC 5321 §4.5.3.1.10 answers by sending the rest in another
/// transaction.
public enum SMTPSubmission {
    public struct Envelope: Equatable, Sendable {
        /// The reverse path, "" for the null sender.
        public var sender: String
        public var recipients: [String]

        public init(sender: String, recipients: [String]) {
            self.sender = sender
            self.recipients = recipients
        }
    }

    /// How long `sendmail` waits. A caller (cron, a PHP request, mailx at a terminal) is
    /// blocked meanwhile, and a relay that is not answering is better served by the
    /// maildrop than by waiting: the relay is on this host, so it accepts and answers in
    /// milliseconds when it runs. What used to be 120 s was a unit in a restart loop whose
    /// socket systemd holds open: connected, never greeted.
    public struct Timeouts: Sendable {
        /// connect(2); a local listener accepts at once or refuses at once.
        public var connect = 5
        /// The greeting and each command's reply: the relay answers them from memory.
        public var reply = 10
        /// The reply to the end of the message, sent only once the message is fsynced in
        /// the spool. Longer, because giving up here while the relay commits would leave
        /// the message both in the spool and in the maildrop: delivered twice.
        public var endOfData = 30

        public init() {}
    }

    /// Recipients accepted in transactions that ended in `250` so far: what a failure
    /// part-way leaves to send another way.
    public struct Progress: Sendable {
        public var recipientsDone = 0
        public var queueIDs: [String] = []
        public init() {}
    }

    /// Submits `content` (CRLF lines, not dot-stuffed) to the first of `targets` that can
    /// be reached; returns the relay's queue ids. `progress` says how far it got when it throws.
    public static func submit(_ content: [UInt8], envelope: Envelope, targets: [SubmissionTarget], heloName: String,
                              timeouts: Timeouts = Timeouts(), progress: inout Progress) throws(SubmissionFailure) -> [String] {
        precondition(!targets.isEmpty, "a submission needs somewhere to go")
        var connection: SubmissionConnection?
        var firstFailure: SubmissionFailure?
        for target in targets where connection == nil {
            do throws(SubmissionFailure) {
                connection = try SubmissionConnection.open(target, timeoutSeconds: timeouts.connect)
            } catch {
                firstFailure = firstFailure ?? error
            }
        }
        guard let connection else { throw firstFailure! }
        try submit(content, envelope: envelope, over: connection, heloName: heloName, timeouts: timeouts, progress: &progress)
        return progress.queueIDs
    }

    static func submit(_ content: [UInt8], envelope: Envelope, over connection: any SubmissionChannel, heloName: String,
                       timeouts: Timeouts, progress: inout Progress) throws(SubmissionFailure) {
        precondition(!envelope.recipients.isEmpty, "a submission needs a recipient")
        let wait = timeouts.reply
        try expect(connection.readReply(timeoutSeconds: wait), 220, "the relay's greeting", connection)
        let ehlo = try connection.command("EHLO \(heloName)", timeoutSeconds: wait)
        if !ehlo.isPositive {
            try expect(connection.command("HELO \(heloName)", timeoutSeconds: wait), 250, "HELO", connection)
        }
        let parameters = mailParameters(content: content, envelope: envelope)
        var remaining = envelope.recipients[...]
        while !remaining.isEmpty {
            let step = "MAIL FROM:<\(envelope.sender)>"
            try expect(connection.command(step + parameters, timeoutSeconds: wait), 250, step, connection)
            let accepted = try addRecipients(remaining, connection, timeoutSeconds: wait)
            try expect(connection.command("DATA", timeoutSeconds: wait), 354, "DATA", connection)
            try connection.send(UpstreamDataEncoder.encode(content))
            let done = try connection.readReply(timeoutSeconds: timeouts.endOfData)
            try expect(done, 250, "the end of the message", connection)
            remaining = remaining.dropFirst(accepted)
            progress.recipientsDone += accepted
            progress.queueIDs.append(done.text.split(separator: " ").last.map(String.init) ?? "")
        }
        _ = try? connection.command("QUIT", timeoutSeconds: wait)
    }

    /// RCPT for each recipient until one is refused; returns how many were accepted.
    private static func addRecipients(_ recipients: ArraySlice<String>, _ connection: any SubmissionChannel,
                                      timeoutSeconds: Int) throws(SubmissionFailure) -> Int {
        var accepted = 0
        for recipient in recipients {
            let step = "RCPT TO:<\(recipient)>"
            let reply = try connection.command(step, timeoutSeconds: timeoutSeconds)
            if reply.isPositive {
                accepted += 1
                continue
            }
            if reply.code == 452 && accepted > 0 { break }   // the rest go in the next transaction
            try expect(reply, 250, step, connection)
        }
        return accepted
    }

    /// BODY=8BITMIME for 8-bit content, SMTPUTF8 for UTF-8 addresses: both advertised by
    /// the relay, and both what the upstream must be told in turn.
    static func mailParameters(content: [UInt8], envelope: Envelope) -> String {
        var parameters = ""
        if content.contains(where: { $0 >= 0x80 }) { parameters += " BODY=8BITMIME" }
        if ([envelope.sender] + envelope.recipients).contains(where: { $0.utf8.contains { $0 >= 0x80 } }) {
            parameters += " SMTPUTF8"
        }
        return parameters
    }

    /// Anything but the expected reply ends the submission: 5xx is the message's fault
    /// (EX_DATAERR), 4xx or anything else a reason to try later (EX_TEMPFAIL).
    private static func expect(_ reply: SMTPReply, _ code: Int, _ step: String,
                               _ connection: any SubmissionChannel) throws(SubmissionFailure) {
        guard reply.code != code else { return }
        let reason = "the relay at \(connection.name) refused \(step): \(reply)"
        _ = try? connection.command("QUIT", timeoutSeconds: 1)
        throw reply.isPermanent ? .data(reason) : .tempfail(reason)
    }
}
