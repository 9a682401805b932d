import Logging

/// An inbound SMTP session with no socket: the maildrop pickup speaks SMTP (through
/// `SMTPSubmission`, the very client `sendmail` uses) to the same `InboundSession` value a
/// client of the Unix socket gets, with the drop file's owner as the client. So a dropped
/// message meets exactly the acceptance it would have met had the relay been up: limits,
/// syntax, the `Received:` header naming `uid=N`, org classification and `clients:` rules,
/// the spool's free-space floor, and a `250` only once it is fsynced in the spool.
///
/// Runs on the pickup's thread, never the loop's: the spool writes and the wait for the
/// committer happen there. The context is the pickup's own (same configuration, no
/// delegate); accepted messages are collected for the pickup to announce on the loop.
final class LocalSubmissionChannel: SubmissionChannel {
    let name: String
    private var session: InboundSession
    private let context: InboundContext
    private let client: ClientIdentity
    private var spooler: MessageSpooler?
    private var replies = UpstreamReplyParser()
    private var closed = false
    private(set) var accepted: [CommittedMessage] = []
    /// Fed to the session in pieces this size, so one content action is never the whole
    /// 35 MiB message.
    static let chunkSize = 64 * 1024

    init(context: InboundContext, client: ClientIdentity) {
        self.context = context
        self.client = client
        name = "the maildrop pickup (\(client))"
        session = InboundSession(configuration: context.sessionConfiguration(client: client, onThisHost: true))
        apply(session.start())
    }

    func send(_ bytes: [UInt8]) throws(SubmissionFailure) {
        var offset = 0
        while offset < bytes.count {
            guard !closed else { throw .tempfail("the session closed") }
            let end = min(bytes.count, offset + Self.chunkSize)
            apply(session.receive(bytes[offset..<end]))
            offset = end
        }
    }

    /// Every reply is ready by the time `send` returns (the commit is waited for there), so
    /// there is nothing to wait for here.
    func readReply(timeoutSeconds: Int) throws(SubmissionFailure) -> SMTPReply {
        do {
            if let reply = try replies.nextReply() { return reply }
        } catch {
            throw .software("the inbound session said something that is not SMTP: \(error)")
        }
        throw .tempfail(closed ? "the session closed" : "no reply from the inbound session")
    }

    /// Message actions first, then the replies (the session's contract); an end of message
    /// is committed after the event's other actions, and its reply follows.
    private func apply(_ actions: [InboundAction]) {
        var ended = false
        for action in actions {
            switch action {
            case .send(let bytes): replies.feed(bytes)
            case .beginMessage(let envelope): spooler = MessageSpooler(envelope: envelope, spool: context.spool,
                                                                      addressing: context.config.addressing, qualifiesHeaders: true)
            case .messageContent(let bytes): spooler?.append(bytes)
            case .endMessage: ended = true
            case .abortMessage:
                spooler?.abort()
                spooler = nil
            case .close: closed = true
            }
        }
        if ended { commit() }
    }

    private func commit() {
        guard let spooler else {
            apply(session.messageFailed(reply: SMTPReply(451, "4.3.0", "Error: local error in processing")))
            return
        }
        self.spooler = nil
        let wait = CommitWait()
        if let refusal = spooler.commit(context: context, client: client, completion: { wait.finish($0) }) {
            apply(session.messageRefused(reply: refusal.reply, org: refusal.org))
            return
        }
        switch wait.result() {
        case .success(let committed):
            accepted.append(committed)
            apply(session.messageCommitted(queueID: committed.id))
        case .failure(let error):
            context.logger.warning("spool refused message", metadata: ["client": "\(client)", "error": "\(error)"])
            apply(session.messageFailed(reply: error.reply))
        }
    }
}

/// The committer's answer, waited for on the pickup's thread.
private final class CommitWait: @unchecked Sendable {
    private let lock = Mutex()
    private var outcome: Result<CommittedMessage, SpoolError>?

    func finish(_ result: Result<CommittedMessage, SpoolError>) {
        lock.withLock {
            outcome = result
            lock.broadcast()
        }
    }

    func result() -> Result<CommittedMessage, SpoolError> {
        lock.withLock {
            while outcome == nil { lock.wait() }
            return outcome!
        }
    }
}
