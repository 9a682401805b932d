import Logging

/// One client connection: carries socket bytes into the `InboundSession` value and carries
/// out the actions it returns — replies, spool writes, timers, close. All protocol decisions
/// are the session's; this class only does I/O.
final class InboundConnection: StreamConnectionDelegate {
    let serial: UInt64
    private let stream: StreamConnection
    private var session: InboundSession
    private let context: InboundContext
    /// The client's address, or its uid on the Unix socket: for logs and `clients:` rules.
    let client: ClientIdentity
    private var message: MessageSpooler?
    private var timer: TimerID?
    private var armedDeadline: Int64?
    private var closed = false
    private var committing = false
    /// A client that sends but never reads replies must not make us buffer without bound,
    /// nor keep the loop busy: past this much unsent output we stop reading from it.
    static let outputHighWater = 64 * 1024

    init(serial: UInt64, stream: StreamConnection, session: InboundSession, context: InboundContext,
         client: ClientIdentity) {
        self.serial = serial
        self.stream = stream
        self.session = session
        self.context = context
        self.client = client
        stream.delegate = self
    }

    var peer: SocketAddress { stream.peer }

    /// True between transactions: a graceful stop may close it with `421` right away.
    var isIdle: Bool {
        guard message == nil else { return false }
        switch session.state {
        case .mail, .rcpt, .data, .committing: return false
        case .connected, .greeting, .ready, .closed: return true
        }
    }

    func start() {
        apply(session.start())
    }

    /// Shutdown: an idle session is told `421 4.3.2` and closed; a busy one finishes first.
    func closeIfIdle(reply: SMTPReply) {
        guard isIdle, !closed else { return }
        stream.write(reply.wireBytes)
        stream.closeAfterFlush()
    }

    func forceClose() {
        stream.close()
    }

    // MARK: StreamConnectionDelegate

    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        apply(session.receive(Array(bytes)))
    }

    func streamConnectionDidDrain(_ connection: StreamConnection) {
        updateReading()
    }

    private func updateReading() {
        guard !closed else { return }
        stream.setReading(!committing && stream.pendingOutputCount <= Self.outputHighWater)
    }

    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) {
        guard !closed else { return }
        closed = true
        _ = session.clientClosed()
        context.loop.cancel(timer)
        timer = nil
        // A client that vanished mid-DATA never got 250: its partial file goes.
        message?.abort()
        message = nil
        context.connectionClosed(self)
    }

    // MARK: actions

    private func apply(_ actions: [InboundAction]) {
        for action in actions {
            perform(action)
        }
        updateReading()
        rearmTimer()
    }

    private func perform(_ action: InboundAction) {
        switch action {
        case .send(let bytes):
            stream.write(bytes)
        case .beginMessage(let envelope):
            message = MessageSpooler(envelope: envelope, spool: context.spool, addressing: context.config.addressing,
                                     qualifiesHeaders: session.configuration.localPartsAllowed)
        case .messageContent(let bytes):
            message?.append(bytes)
        case .endMessage:
            commitMessage()
        case .abortMessage:
            message?.abort()
            message = nil
            context.delegate?.transactionRejected()
        case .close:
            stream.closeAfterFlush()
        }
    }

    private func commitMessage() {
        guard let message else {
            apply(session.messageFailed(reply: SMTPReply(451, "4.3.0", "Error: local error in processing")))
            return
        }
        self.message = nil
        committing = true
        stream.setReading(false)
        let loop = context.loop
        let done = LoopCallback<Result<CommittedMessage, SpoolError>> { [weak self] result in
            self?.committed(result)
        }
        let refusal = message.commit(context: context, client: client) { result in
            loop.execute { done.call(result) }
        }
        if let refusal { refused(refusal) }
    }

    /// Refused for its org (`org_header_trust`, `clients:`): nothing was spooled.
    private func refused(_ refusal: TenancyRefusal) {
        committing = false
        context.delegate?.transactionRejected()
        apply(session.messageRefused(reply: refusal.reply, org: refusal.org))
    }

    private func committed(_ result: Result<CommittedMessage, SpoolError>) {
        if case .success(let committed) = result {
            // Durable in queue/ now, whether or not the client is still there to hear 250:
            // delivery must learn of it, or it would wait in the spool until a restart.
            context.messageAccepted(committed.envelope, content: committed.content, client: client)
        }
        guard !closed else { return }
        committing = false
        updateReading()
        switch result {
        case .success(let committed):
            apply(session.messageCommitted(queueID: committed.id))
            if context.delegate?.isStopping == true { closeIfIdle(reply: InboundServer.shutdownReply(context.hostname)) }
        case .failure(let error):
            context.logger.warning("spool refused message", metadata: ["client": "\(client)", "error": "\(error)"])
            context.delegate?.transactionRejected()
            apply(session.messageFailed(reply: error.reply))
        }
    }

    /// One timer, at the session's deadline; kept while the deadline stays put (input that
    /// completes no command does not move it), replaced when it moves.
    private func rearmTimer() {
        guard !closed, let deadline = session.pendingDeadline else {
            context.loop.cancel(timer)
            timer = nil
            armedDeadline = nil
            return
        }
        guard deadline != armedDeadline || timer == nil else { return }
        context.loop.cancel(timer)
        armedDeadline = deadline
        let delay = max(0, deadline - session.configuration.now())
        timer = context.loop.schedule(afterMilliseconds: delay) { [weak self] in
            guard let self, !self.closed else { return }
            self.timer = nil
            // The session's 421 is logged as a refusal (command=TIMEOUT).
            self.apply(self.session.timedOut())
        }
    }
}
