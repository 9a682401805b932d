/// One message submitted to the relay over SMTP, as `sendmail` does it: EHLO, MAIL, RCPT
/// per recipient, DATA, QUIT. Postfix's sendmail hands the message to its own queue and
/// reports recipient problems later as bounces; this one has no queue of its own, so its
/// answer is the relay's: the exit status says whether the relay took the message.
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

    /// Submits `content` (CRLF lines, not dot-stuffed); returns the relay's queue ids.
    public static func submit(_ content: [UInt8], envelope: Envelope, target: SubmissionTarget, heloName: String,
                              timeoutSeconds: Int = 120) throws(SubmissionFailure) -> [String] {
        precondition(!envelope.recipients.isEmpty, "a submission needs a recipient")
        let connection = try SubmissionConnection.open(target, timeoutSeconds: timeoutSeconds)
        try expect(connection.readReply(), 220, "the relay's greeting", connection)
        let ehlo = try connection.command("EHLO \(heloName)")
        if !ehlo.isPositive {
            try expect(connection.command("HELO \(heloName)"), 250, "HELO", connection)
        }
        let parameters = mailParameters(content: content, envelope: envelope)
        var remaining = envelope.recipients[...]
        var queueIDs: [String] = []
        while !remaining.isEmpty {
            let step = "MAIL FROM:<\(envelope.sender)>"
            try expect(connection.command(step + parameters), 250, step, connection)
            let accepted = try addRecipients(remaining, connection)
            remaining = remaining.dropFirst(accepted)
            try expect(connection.command("DATA"), 354, "DATA", connection)
            try connection.send(UpstreamDataEncoder.encode(content))
            let done = try connection.readReply()
            try expect(done, 250, "the end of the message", connection)
            queueIDs.append(done.text.split(separator: " ").last.map(String.init) ?? "")
        }
        _ = try? connection.command("QUIT")
        return queueIDs
    }

    /// RCPT for each recipient until one is refused; returns how many were accepted.
    private static func addRecipients(_ recipients: ArraySlice<String>,
                                      _ connection: SubmissionConnection) throws(SubmissionFailure) -> Int {
        var accepted = 0
        for recipient in recipients {
            let step = "RCPT TO:<\(recipient)>"
            let reply = try connection.command(step)
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
                               _ connection: SubmissionConnection) throws(SubmissionFailure) {
        guard reply.code != code else { return }
        let reason = "the relay at \(connection.target) refused \(step): \(reply)"
        _ = try? connection.command("QUIT")
        throw reply.isPermanent ? .data(reason) : .tempfail(reason)
    }
}
