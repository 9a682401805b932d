import Logging

/// Every inbound refusal as one log line, Postfix's `NOQUEUE: reject:` in our key=value form:
/// `refused client=192.0.2.7 command=RCPT code=452 enhanced=4.5.3 reply="452 4.5.3 Error: too
/// many recipients" from=<a@acme.example> to=<r101@example.com> helo=app.local`.
/// Under journald the keys become `SMARTHOST_CLIENT`, `SMARTHOST_COMMAND`, `SMARTHOST_CODE`…
/// and the enhanced code also `DSN`, like the delivery lines.
enum RefusalLog {
    static let event = "refused"

    static func metadata(_ refusal: InboundRefusal, client: String) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "client": "\(client)",
            "command": "\(refusal.command)",
            "code": "\(refusal.reply.code)",
            "enhanced": "\(refusal.reply.enhanced ?? "-")",
            "reply": "\(refusal.reply.description)",
        ]
        if let sender = refusal.sender { metadata["from"] = "\(sender.description)" }
        if let recipient = refusal.recipient { metadata["to"] = "\(recipient.description)" }
        if let helo = refusal.helo { metadata["helo"] = "\(helo)" }
        if let org = refusal.org { metadata["org"] = "\(org)" }
        return metadata
    }

    static func log(_ refusal: InboundRefusal, client: String, to logger: Logger) {
        logger.notice("\(event)", metadata: metadata(refusal, client: client))
    }
}
