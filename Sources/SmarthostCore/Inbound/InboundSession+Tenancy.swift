extension InboundSession {
    /// The message was read to its end but may not go out as the org it claims (issue 15's
    /// tenancy): answered like a spool failure, with the org on the refusal's log line.
    public mutating func messageRefused(reply: SMTPReply, org: String) -> [Action] {
        precondition(reply.code >= 500, "a tenancy refusal is permanent")
        commandContext.org = org
        return messageFailed(reply: reply)
    }
}
