/// One reply of class 4 or 5 that the session gave its client, with what was refused: the
/// driver writes each as one log line (Postfix's `NOQUEUE: reject: RCPT from …`), so no
/// refusal leaves only a counter behind.
public struct InboundRefusal: Equatable, Sendable {
    /// What was refused: a verb (`MAIL`, `RCPT`…), `CONNECT` (the access list, the connection
    /// limit), `END-OF-MESSAGE` (content judged at the end of DATA: size, line length,
    /// smuggling, the spool), `TIMEOUT`, or `UNKNOWN` (no verb: an unknown command, a line
    /// too long, a bare CR or NUL).
    public var command: String
    public var reply: SMTPReply
    /// The transaction's sender, or the one the refused MAIL named.
    public var sender: MailPath?
    /// The recipient the refused RCPT named, or the only one of a refused message.
    public var recipient: MailPath?
    /// The client's HELO/EHLO name, once it gave one.
    public var helo: String?
    /// The org a message was refused as (`org_header_trust`, `clients:`).
    public var org: String?

    public init(command: String, reply: SMTPReply, sender: MailPath? = nil, recipient: MailPath? = nil,
                helo: String? = nil, org: String? = nil) {
        self.command = command
        self.reply = reply
        self.sender = sender
        self.recipient = recipient
        self.helo = helo
        self.org = org
    }

    public static let connect = "CONNECT"
    public static let endOfMessage = "END-OF-MESSAGE"
    public static let timeout = "TIMEOUT"
    public static let unknown = "UNKNOWN"
}

extension InboundSession {
    /// What the client is being answered for; every refusal is reported with it.
    struct CommandContext: Sendable {
        var command = InboundRefusal.connect
        var sender: MailPath?
        var recipient: MailPath?
        var org: String?
    }

    /// The observer hears of a 4xx/5xx reply with its context.
    func reportRefusal(_ reply: SMTPReply) {
        guard reply.code >= 400, let observer = configuration.observer else { return }
        observer(.refusal(InboundRefusal(
            command: commandContext.command, reply: reply,
            sender: commandContext.sender ?? transaction?.sender,
            recipient: commandContext.recipient, helo: client?.name, org: commandContext.org)))
    }

    /// The end of DATA is judged with the transaction still known, before it is reset.
    mutating func enterEndOfMessageContext() {
        let recipients = transaction?.recipients ?? []
        commandContext = CommandContext(command: InboundRefusal.endOfMessage, sender: transaction?.sender,
                                        recipient: recipients.count == 1 ? recipients[0] : nil)
    }
}
