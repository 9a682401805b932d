/// An RFC 3464 delivery status notification as a message of its own (RFC 6522
/// `multipart/report; report-type=delivery-status`): a human-readable part, a
/// `message/delivery-status` part with one per-recipient block for each recipient it is
/// about (the upstream's reply, the remote MTA), and what `NoticeOriginal` returns of the
/// original: the whole message when it is small, else its header (bounded either way).
///
/// Pure: the clock, the tokens and the original header come in, bytes (CRLF) come out.
public struct DeliveryStatusNotice: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The message became a dead letter: `Action: failed`.
        case failure
        /// Still queued past `notices.delay_warning`: `Action: delayed`, retries go on.
        case delay
    }

    /// One per-recipient block (RFC 3464 §2.3).
    public struct Recipient: Sendable, Equatable {
        public var address: String
        /// RFC 3463 code: from the upstream's reply when it has one.
        public var status: String
        /// The upstream's reply, or our reason (`Diagnostic-Code: smtp; …`).
        public var diagnostic: String
        /// The upstream that answered (`Remote-MTA: dns; host`), when one did.
        public var remoteMTA: String?

        public init(address: String, status: String, diagnostic: String, remoteMTA: String?) {
            self.address = address
            self.status = status
            self.diagnostic = diagnostic
            self.remoteMTA = remoteMTA
        }
    }

    public var kind: Kind
    /// The notice's recipient as shown in `To:` (the original sender).
    public var to: String
    /// Our name: `Reporting-MTA`, the `MAILER-DAEMON@` domain, the Message-ID domain.
    public var reportingMTA: String
    public var queueID: String
    public var arrivalUnixSeconds: Int64
    public var recipients: [Recipient]
    /// What of the original is returned (whole, or its header; bounded).
    public var original: NoticeOriginal
    public var nowUnixSeconds: Int
    /// Random: the MIME boundary and the Message-ID.
    public var token: String

    public init(kind: Kind, to: String, reportingMTA: String, queueID: String, arrivalUnixSeconds: Int64,
                recipients: [Recipient], original: NoticeOriginal, nowUnixSeconds: Int, token: String) {
        self.kind = kind
        self.to = to
        self.reportingMTA = reportingMTA
        self.queueID = queueID
        self.arrivalUnixSeconds = arrivalUnixSeconds
        self.recipients = recipients
        self.original = original
        self.nowUnixSeconds = nowUnixSeconds
        self.token = token
    }

    var boundary: String { "\(queueID)/\(token)" }

    public var bytes: [UInt8] {
        var out = Array(header.utf8)
        out += Array(part(type: "text/plain; charset=utf-8", description: "Notification", humanText).utf8)
        out += Array(part(type: "message/delivery-status", description: "Delivery report", statusText).utf8)
        out += Array(part(type: original.contentType, description: originalDescription, "",
                          encoding: original.transferEncoding).utf8)
        out += original.bytes
        out += Array("\r\n--\(boundary)--\r\n".utf8)
        return out
    }

    private var header: String {
        let subject = kind == .failure ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)"
        return "From: Mail Delivery System <MAILER-DAEMON@\(reportingMTA)>\r\n"
            + "To: <\(to)>\r\n"
            + "Subject: \(subject)\r\n"
            + "Date: \(ReceivedHeader.rfc5322Date(unixSeconds: nowUnixSeconds))\r\n"
            + "Message-ID: <\(nowUnixSeconds).\(token).\(queueID)@\(reportingMTA)>\r\n"
            // RFC 3834 §5: never answered automatically, so a notice cannot start a loop.
            + "Auto-Submitted: auto-replied\r\n"
            + "MIME-Version: 1.0\r\n"
            + "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"\r\n"
            + "\r\n"
            + "This is a MIME-encapsulated message.\r\n"
    }

    private func part(type: String, description: String, _ text: String, encoding: String? = nil) -> String {
        "\r\n--\(boundary)\r\nContent-Description: \(description)\r\nContent-Type: \(type)\r\n"
            + (encoding.map { "Content-Transfer-Encoding: \($0)\r\n" } ?? "") + "\r\n" + text
    }

    private var originalDescription: String {
        switch (kind, original) {
        case (.failure, .message): return "Undelivered Message"
        case (.failure, .headers): return "Undelivered Message Headers"
        case (.delay, .message): return "Delayed Message"
        case (.delay, .headers): return "Delayed Message Headers"
        }
    }

    private var humanText: String {
        var lines: [String]
        switch kind {
        case .failure:
            lines = ["This is the mail relay at \(reportingMTA).", "",
                     "Your message could not be delivered to one or more recipients."]
                + original.describedForHumans + ["", "The upstream's reply for each recipient:", ""]
        case .delay:
            lines = ["This is the mail relay at \(reportingMTA).", "",
                     "Your message could not be delivered yet to one or more recipients. Delivery is",
                     "still being tried; you do not need to send it again."]
                + original.describedForHumans + ["", "The latest reply for each recipient:", ""]
        }
        for recipient in recipients {
            lines.append("<\(recipient.address)>: \(Self.bounded(recipient.diagnostic))")
        }
        return lines.map(Self.printable).joined(separator: "\r\n") + "\r\n"
    }

    /// RFC 3464 §2.2 (per message) and §2.3 (per recipient), each block ended by an empty line.
    private var statusText: String {
        var lines = ["Reporting-MTA: dns; \(reportingMTA)", "X-Smarthost-Queue-ID: \(queueID)",
                     "Arrival-Date: \(ReceivedHeader.rfc5322Date(unixSeconds: Int(arrivalUnixSeconds)))", ""]
        for recipient in recipients {
            lines.append("Final-Recipient: rfc822; \(recipient.address)")
            lines.append("Action: \(kind == .failure ? "failed" : "delayed")")
            lines.append("Status: \(recipient.status)")
            if let remote = recipient.remoteMTA { lines.append("Remote-MTA: dns; \(remote)") }
            lines.append("Diagnostic-Code: smtp; \(Self.bounded(recipient.diagnostic))")
            lines.append("")
        }
        return lines.map(Self.printable).joined(separator: "\r\n")
    }

    /// The status code in a reply (`550 5.1.1 …` → `5.1.1`), else the class's default:
    /// 5.0.0 for a failure, 4.0.0 for a delay (RFC 3463 §3.1 "other undefined status").
    public static func status(in reply: String, kind: Kind) -> String {
        if let code = JournalFields.enhancedStatusCode(in: reply), code.first == (kind == .failure ? "5" : "4") {
            return code
        }
        return kind == .failure ? "5.0.0" : "4.0.0"
    }

    /// Upstream text is not trusted to be clean: no control characters in a field.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? " " : Character($0) })
    }

    /// A diagnostic is one field line of the delivery-status part: RFC 5322 §2.1.1 bounds a
    /// line at 998 characters, and an upstream's reply (or a chain of them) can be longer.
    static let diagnosticLimit = 900

    static func bounded(_ text: String) -> String {
        guard text.utf8.count > diagnosticLimit else { return text }
        var out = String.UnicodeScalarView()
        var length = 0
        for scalar in text.unicodeScalars {
            length += String(scalar).utf8.count
            if length > diagnosticLimit { break }
            out.append(scalar)
        }
        return String(out) + " [...]"
    }

    /// CRLF line ends throughout, ending with one.
    static func normalizedHeader(_ header: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(header.count + 2)
        var previous: UInt8 = 0
        for byte in header {
            if byte == 10 && previous != 13 { out.append(13) }
            out.append(byte)
            previous = byte
        }
        if out.suffix(2) != [13, 10] { out += [13, 10] }
        return out
    }

    /// The header section of a stored message (up to, not including, the empty line).
    public static func headerSection(of message: [UInt8]) -> [UInt8] {
        let separator: [UInt8] = [13, 10, 13, 10]
        if message.starts(with: [13, 10]) { return [] }
        guard message.count >= 4 else { return message }
        for index in 0...(message.count - 4) where message[index..<(index + 4)].elementsEqual(separator) {
            return Array(message[..<(index + 2)])
        }
        return message
    }
}
