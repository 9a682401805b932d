/// One message on a ready session: MAIL, RCPT, DATA and their replies, with or without
/// PIPELINING, each recipient on its own; a failed transaction never ends the session.
extension UpstreamSession {
    mutating func begin(_ message: UpstreamMessage) {
        let caps = capabilities ?? UpstreamCapabilities()
        transaction = Transaction(message: message, pipelined: caps.pipelining)
        if let refusal = Self.localRefusal(of: message, capabilities: caps) {
            transaction?.result.failure = refusal
            return finishTransaction(then: .ready)
        }
        enter(.mailFrom)
    }

    func mailFromCommand(_ message: UpstreamMessage, capabilities caps: UpstreamCapabilities) -> String {
        var command = "MAIL FROM:<\(message.sender)>"
        if caps.maxSize != nil { command += " SIZE=\(message.size)" }                  // RFC 1870
        if message.needs8BitMIME && caps.eightBitMIME { command += " BODY=8BITMIME" }  // RFC 6152
        if message.needsSMTPUTF8 { command += " SMTPUTF8" }                            // RFC 6531
        return command
    }

    func rcptCommand(_ index: Int) -> String {
        guard let message = transaction?.message else { preconditionFailure("RCPT without a transaction") }
        return "RCPT TO:<\(message.recipients[index])>"
    }

    /// With PIPELINING the whole envelope and DATA go in one write (RFC 2920 §3.1: DATA
    /// may end a group) and the replies are matched in order; without it, one at a time.
    mutating func sendMailFrom() {
        guard let transaction else { preconditionFailure("MAIL without a transaction") }
        let mail = mailFromCommand(transaction.message, capabilities: capabilities ?? UpstreamCapabilities())
        guard transaction.pipelined else { return send(mail) }
        let commands = [mail] + transaction.message.recipients.indices.map(rcptCommand) + ["DATA"]
        for command in commands { record(.sent(command)) }
        actions.append(.write(Array(commands.map { $0 + "\r\n" }.joined().utf8)))
    }

    mutating func sendMessageData() {
        guard let data = transaction?.message.encodedData else { preconditionFailure("data without a transaction") }
        record(.dataSent(data.count))
        actions.append(.write(data))
    }

    mutating func mailReply(_ reply: SMTPReply) {
        guard let transaction else { preconditionFailure("MAIL reply without a transaction") }
        if !reply.isPositive {
            self.transaction?.result.failure = UpstreamFailure(step: .mailFrom, reply: reply, detail: "sender refused",
                                                                       reason: .rejected)
            // Pipelined: the RCPT and DATA replies are still on their way; read them first.
            if !transaction.pipelined { return finishTransaction(then: .rset) }
        }
        enter(.rcptTo(index: 0))
    }

    /// Each recipient stands on its own: one refusal does not fail the others.
    mutating func rcptReply(_ reply: SMTPReply, index: Int) {
        guard var current = transaction else { preconditionFailure("RCPT reply without a transaction") }
        let recipients = current.message.recipients
        if current.result.failure == nil {
            let entry = UpstreamRecipientResult(recipient: recipients[index], reply: reply)
            if reply.isPositive {
                current.result.accepted.append(entry)
            } else {
                current.result.refused.append(entry)
            }
        }
        let isLast = index + 1 == recipients.count
        if isLast, current.result.failure == nil, current.result.accepted.isEmpty {
            current.result.failure = UpstreamFailure(step: .rcptTo, reply: current.result.refused.last?.reply,
                                                     detail: "no recipient accepted", reason: .noRecipientAccepted)
        }
        transaction = current
        if !isLast { return enter(.rcptTo(index: index + 1)) }
        if current.pipelined || current.result.failure == nil { return enter(.data) }
        finishTransaction(then: .rset)
    }

    mutating func dataReply(_ reply: SMTPReply) {
        let failedAlready = transaction?.result.failure != nil
        if reply.code == 354 {
            // A pipelined DATA can be accepted although MAIL or every RCPT failed: end it
            // with an empty message, which the server must refuse (RFC 2920 §3.1).
            return failedAlready ? enter(.dataAbort) : enter(.dataEnd)
        }
        if !failedAlready {
            transaction?.result.failure = UpstreamFailure(step: .data, reply: reply, detail: "DATA refused", reason: .rejected)
        }
        finishTransaction(then: .rset)
    }

    /// The final reply ends the transaction whatever it says, so no RSET is needed.
    mutating func dataEndReply(_ reply: SMTPReply) {
        transaction?.result.dataReply = reply
        if !reply.isPositive {
            transaction?.result.failure = UpstreamFailure(step: .dataEnd, reply: reply, detail: "message refused", reason: .rejected)
        }
        finishTransaction(then: .ready)
    }

    mutating func finishTransaction(then next: State) {
        guard let result = transaction?.result else { preconditionFailure("no transaction to finish") }
        transaction = nil
        actions.append(.messageResult(result))
        enter(next)
    }

    /// What we can tell before sending anything: a server without SMTPUTF8 cannot take a
    /// message that needs it (RFC 6531 §3.4), and one that announced a SIZE limit will
    /// refuse a larger message (RFC 1870 §6), so do not send it.
    static func localRefusal(of message: UpstreamMessage, capabilities: UpstreamCapabilities) -> UpstreamFailure? {
        let addresses = [message.sender] + message.recipients
        if addresses.contains(where: { $0.utf8.contains { $0 < 32 || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") } }) {
            return UpstreamFailure(step: .mailFrom, detail: "invalid address in the envelope", permanent: true,
                                   reason: .invalidEnvelope)
        }
        if message.needsSMTPUTF8 && !capabilities.smtpUTF8 {
            return UpstreamFailure(step: .mailFrom, detail: "message needs SMTPUTF8, which the server does not offer",
                                   permanent: true, reason: .smtputf8NotOffered)
        }
        if let limit = capabilities.maxSize, limit > 0, message.size > limit {
            return UpstreamFailure(step: .mailFrom, detail: "message size \(message.size) exceeds the server's limit of \(limit)",
                                   permanent: true, reason: .messageTooLarge(limit: limit))
        }
        return nil
    }
}
