/// One inbound SMTP session as a plain value: the driver feeds it events
/// (connection start, bytes read, timer fired, spool result) and carries out
/// the actions it returns. No sockets, no clock: the date for the `Received:`
/// header comes from the injected `Configuration.clock`.
///
/// Driver contract:
/// - `start()` once, at accept; then `receive(_:)` with every chunk read.
/// - Each event returns its actions in this order: message actions
///   (`beginMessage`, `messageContent`, `endMessage`, `abortMessage`) in the
///   order they happened, then at most one `.send` holding every reply of the
///   event (RFC 2920: one write per pipelined group), then `.close` last.
/// - After `.endMessage` the session is `committing`: make the message durable,
///   then call `messageCommitted(queueID:)` or `messageFailed(reply:)`. Input
///   read meanwhile is held, bounded, and run after that call.
/// - Arm one timer for `pendingDeadline` (on `Configuration.now`'s clock) and call
///   `timedOut()` when it fires; rearm when the deadline changes. Bytes that do not
///   complete a command never move it: a client dripping one byte at a time gets the
///   same 421 as an idle one. Stop reading while `wantsInputPaused`. Call
///   `clientClosed()` on EOF.
public struct InboundSession: Sendable {
    /// Where the session stands. Every change goes through `enter(_:)`.
    public enum State: Equatable, Sendable {
        case connected    // accepted, `start()` not called yet
        case greeting     // greeting sent, waiting for HELO/EHLO
        case ready        // HELO/EHLO done, no mail transaction
        case mail         // MAIL accepted
        case rcpt         // at least one RCPT accepted
        case data         // 354 sent, reading message content
        case committing   // content complete, waiting for the spool
        case closed
    }

    public struct Configuration: Sendable {
        /// Our name in the greeting, the EHLO reply and the `Received:` header.
        public var hostname: String
        public var maxMessageSize: Int
        public var maxRecipients: Int
        /// The client's IP address as text, for `Received:` and the envelope.
        public var clientAddress: String
        /// False when the access list refuses this client: 554 at connect.
        public var clientAllowed: Bool
        /// Errors (4xx/5xx replies to the client's mistakes) before 421 and close.
        public var maxErrors: Int
        /// Seconds since the epoch, for the `Received:` date.
        public var clock: @Sendable () -> Int
        /// Told of every reply and every state change, so the driver can write
        /// its log lines (4xx/5xx rejects, transitions) from one place.
        public var observer: (@Sendable (Observation) -> Void)?
        /// Asked at MAIL and DATA with the declared size (0 if none): a reply (`452 4.3.1`)
        /// when the spool cannot take the message, so the client hears it before it sends
        /// the content (RFC 1870 §6.1). nil accepts; the spool still checks at end of data.
        public var storageCheck: (@Sendable (_ expectedSize: Int) -> SMTPReply?)?
        /// What a bare LF means in commands and content (`limits.bare_lf`).
        public var bareLineFeed: BareLineFeedPolicy
        /// Each command line must be complete within this, counted from when the session
        /// starts waiting for it (the greeting, the previous command, the end of a message)
        /// — `limits.idle_timeout`. Partial input does not restart it.
        public var commandTimeoutMilliseconds: Int64
        /// The whole message content must arrive within this, counted from `354` —
        /// `limits.data_timeout`. Not restarted by input.
        public var dataTimeoutMilliseconds: Int64
        /// The connection's whole life, from `start()` (`limits.max_connection_time`):
        /// checked where a command is awaited, never during DATA. 0: no bound.
        public var connectionTimeMilliseconds: Int64
        /// Monotonic milliseconds, for the deadlines; injected for tests.
        public var now: @Sendable () -> Int64
        /// The client is on this host (Unix socket, maildrop, loopback): bare local parts
        /// (`MAIL FROM:<root>`) are taken, to be qualified with `hostname:` at acceptance,
        /// as Postfix does for its own machine's clients. Others hear 553 for them.
        public var localPartsAllowed = false

        public init(hostname: String, maxMessageSize: Int = 35 * 1024 * 1024, maxRecipients: Int = 100,
                    clientAddress: String, clientAllowed: Bool = true, maxErrors: Int = 10,
                    clock: @escaping @Sendable () -> Int = ReceivedHeader.currentUnixSeconds,
                    observer: (@Sendable (Observation) -> Void)? = nil,
                    storageCheck: (@Sendable (_ expectedSize: Int) -> SMTPReply?)? = nil,
                    bareLineFeed: BareLineFeedPolicy = .normalize,
                    commandTimeoutMilliseconds: Int64 = 5 * 60_000, dataTimeoutMilliseconds: Int64 = 10 * 60_000,
                    connectionTimeMilliseconds: Int64 = 0,
                    now: @escaping @Sendable () -> Int64 = { MonotonicClock.nowMilliseconds() }) {
            self.hostname = hostname
            self.maxMessageSize = maxMessageSize
            self.maxRecipients = maxRecipients
            self.clientAddress = clientAddress
            self.clientAllowed = clientAllowed
            self.maxErrors = maxErrors
            self.clock = clock
            self.observer = observer
            self.storageCheck = storageCheck
            self.bareLineFeed = bareLineFeed
            self.commandTimeoutMilliseconds = commandTimeoutMilliseconds
            self.dataTimeoutMilliseconds = dataTimeoutMilliseconds
            self.connectionTimeMilliseconds = connectionTimeMilliseconds
            self.now = now
        }
    }

    /// What `Configuration.observer` is told.
    public enum Observation: Equatable, Sendable {
        case reply(SMTPReply)
        /// Right after a 4xx/5xx `.reply`: what it refused.
        case refusal(InboundRefusal)
        case transition(from: State, to: State)
    }

    public enum Action: Equatable, Sendable {
        /// Reply bytes to write, in order.
        case send([UInt8])
        /// 354 was sent: open a spool file for this envelope.
        case beginMessage(Envelope)
        /// Message content to append, the `Received:` header first.
        case messageContent([UInt8])
        /// The content is complete and clean: commit it, then call
        /// `messageCommitted(queueID:)` or `messageFailed(reply:)`.
        case endMessage
        /// The transaction failed: discard what was written since `beginMessage`.
        case abortMessage
        /// Close the connection once the bytes sent before it are written.
        case close
    }

    /// The mail transaction handed to the spool at `beginMessage`.
    public struct Envelope: Equatable, Sendable {
        public var sender: MailPath
        public var recipients: [MailPath]
        public var body: MailPath.BodyType?
        public var smtputf8: Bool
        /// The SIZE the client declared (RFC 1870), if any.
        public var declaredSize: Int?
        public var heloName: String
        public var clientAddress: String
        public var withProtocol: ReceivedHeader.WithProtocol

        public init(sender: MailPath, recipients: [MailPath], body: MailPath.BodyType? = nil, smtputf8: Bool = false,
                    declaredSize: Int? = nil, heloName: String, clientAddress: String,
                    withProtocol: ReceivedHeader.WithProtocol = .esmtp) {
            self.sender = sender
            self.recipients = recipients
            self.body = body
            self.smtputf8 = smtputf8
            self.declaredSize = declaredSize
            self.heloName = heloName
            self.clientAddress = clientAddress
            self.withProtocol = withProtocol
        }
    }

    /// The timer the driver should have armed now.
    public enum Timeout: Equatable, Sendable {
        case command   // waiting for a command (idle timeout)
        case data      // waiting for message content (data timeout)
        case none      // waiting for us (committing) or closed
    }

    /// The client's HELO/EHLO.
    struct ClientGreeting: Sendable {
        var name: String
        var extended: Bool
    }

    struct Transaction: Sendable {
        var sender: MailPath
        var parameters: MailPath.Parameters
        var recipients: [MailPath] = []
    }

    /// What one event produced; turned into `[Action]` by `finish()`.
    struct Output: Sendable {
        var messageActions: [Action] = []
        var replyBytes: [UInt8] = []
        var close = false

        mutating func finish() -> [Action] {
            var actions = messageActions
            if !replyBytes.isEmpty { actions.append(.send(replyBytes)) }
            if close { actions.append(.close) }
            self = Output()
            return actions
        }
    }

    public let configuration: Configuration
    public internal(set) var state = State.connected
    var framer: LineFramer
    var decoder: DataDecoder?
    var client: ClientGreeting?
    var transaction: Transaction?
    var errorCount = 0
    var junkCount = 0
    /// RCPTs refused with 452 for being past max_recipients, over the whole session.
    var recipientOvershoot = 0
    /// Postfix's default smtpd_recipient_overshoot_limit.
    static let recipientOvershootLimit = 1000
    /// Postfix's default smtpd_junk_command_limit.
    static let junkCommandLimit = 100
    var output = Output()
    /// Input held while committing went over `heldInputLimit` and was dropped.
    var heldInputOverflowed = false
    /// The client hung up while committing: nothing left to reply to.
    var clientGone = false
    /// The command being answered, for the refusals reported to the observer.
    var commandContext = CommandContext()
    /// When the command or the message content now awaited must be complete (monotonic
    /// milliseconds); nil while committing or closed.
    public private(set) var pendingDeadline: Int64?
    /// When `connectionTimeMilliseconds` runs out (set by `start()`); nil: no bound.
    var connectionDeadline: Int64?

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.framer = LineFramer(bareLineFeed: configuration.bareLineFeed)
    }

    public var pendingTimeout: Timeout {
        switch state {
        case .data: .data
        case .committing, .closed, .connected: .none
        case .greeting, .ready, .mail, .rcpt: .command
        }
    }

    /// True while the session will not act on input (committing, closed): the
    /// driver should stop reading, which pushes back on a flooding client.
    public var wantsInputPaused: Bool { state == .committing || state == .closed }

    /// Most input held while committing: a maximal legal pipelined group (MAIL,
    /// every RCPT, DATA, each at most 512 octets) always fits.
    var heldInputLimit: Int { max(64 * 1024, (configuration.maxRecipients + 3) * LineFramer.maxCommandLineLength) }

    var isCommandMode: Bool {
        switch state {
        case .greeting, .ready, .mail, .rcpt: true
        case .connected, .data, .committing, .closed: false
        }
    }
}

// MARK: - Events

extension InboundSession {
    /// The connection was accepted: greet, or refuse a client the access list
    /// does not allow (RFC 5321 §3.1: 554 instead of 220).
    public mutating func start() -> [Action] {
        precondition(state == .connected, "start() called twice")
        startConnectionClock()
        if configuration.clientAllowed {
            // The greeting carries no enhanced code (RFC 2034 §3).
            send(SMTPReply(220, nil, "\(configuration.hostname) ESMTP smarthost"))
            enter(.greeting)
        } else {
            close(with: SMTPReply(554, "5.7.1", "\(configuration.hostname) Error: access denied for \(configuration.clientAddress)"))
        }
        return output.finish()
    }

    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        receive(bytes[...])
    }

    /// Bytes read from the client, in any chunking.
    public mutating func receive(_ bytes: ArraySlice<UInt8>) -> [Action] {
        precondition(state != .connected, "receive(_:) before start()")
        // Bytes that come after the deadline (the loop was busy, the timer not yet run)
        // complete nothing: the client was too slow either way.
        if isPastDeadline {
            timeOut()
            return output.finish()
        }
        switch state {
        case .data:
            feedData(bytes)
        case .committing:
            hold(bytes)
        case .greeting, .ready, .mail, .rcpt:
            framer.append(bytes)
            runCommands()
        case .connected, .closed:
            break
        }
        return output.finish()
    }

    /// The spool made the message durable (fsync of file and directory).
    public mutating func messageCommitted(queueID: String) -> [Action] {
        finishCommit(SMTPReply(250, "2.0.0", "Ok: queued as \(queueID)"))
    }

    /// The spool could not take the message, e.g. `452 4.3.1` when the disk is full.
    public mutating func messageFailed(reply: SMTPReply) -> [Action] {
        finishCommit(reply)
    }

    /// The timer for `pendingDeadline` fired. Early (a stale timer) it does nothing.
    public mutating func timedOut() -> [Action] {
        guard isPastDeadline else { return [] }
        timeOut()
        return output.finish()
    }

    var isPastDeadline: Bool {
        guard pendingTimeout != .none, let pendingDeadline else { return false }
        return configuration.now() >= pendingDeadline
    }

    /// 421 and close (RFC 5321 §4.5.3.2: the server may close a session that is too slow).
    mutating func timeOut() {
        if isPastConnectionTime { return endConnectionTime() }
        commandContext = CommandContext(command: InboundRefusal.timeout)
        close(with: SMTPReply(421, "4.4.2", "\(configuration.hostname) Error: timeout exceeded"))
    }

    /// Starts the time allowed for the next command line, which the connection's own
    /// bound may cut short.
    mutating func awaitCommand() {
        pendingDeadline = min(configuration.now() + configuration.commandTimeoutMilliseconds, connectionDeadline ?? .max)
    }

    /// The client closed the connection (EOF or error on read).
    public mutating func clientClosed() -> [Action] {
        switch state {
        case .committing:
            clientGone = true   // the message is still committed; no one to tell
        case .closed:
            break
        case .connected, .greeting, .ready, .mail, .rcpt, .data:
            enter(.closed)
        }
        return output.finish()
    }
}

// MARK: - Input

extension InboundSession {
    /// Frames and dispatches every complete command line, in order, while the
    /// session is in command mode.
    mutating func runCommands() {
        var completed = false
        defer { if completed && isCommandMode { awaitCommand() } }
        while isCommandMode, let event = framer.nextEvent() {
            completed = true
            // Pipelined commands after a long DATA: the bound is checked at each boundary.
            if isPastConnectionTime { return endConnectionTime() }
            commandContext = CommandContext(command: InboundRefusal.unknown)
            switch event {
            case .line(let line):
                dispatch(line)
            case .tooLong:
                reply(SMTPReply(500, "5.5.2", "Line too long"))
            case .badLineEnding:
                // A bare CR/LF line is never executed and ends the transaction:
                // it may be the tail of a smuggled message.
                if state == .mail || state == .rcpt { enter(.ready) }
                reply(SMTPReply(550, "5.5.2", "Error: bare CR, bare LF or NUL in command"))
            }
        }
    }

    /// DATA mode: decode content; at the end, commit or fail, and hand the
    /// bytes after the end (a pipelined next command) to command mode.
    mutating func feedData(_ bytes: ArraySlice<UInt8>) {
        guard var decoder else { preconditionFailure("data state without a decoder") }
        var content: [UInt8] = []
        content.reserveCapacity(bytes.count)   // one allocation per read, none per line
        let step = decoder.decode(bytes, into: &content)
        self.decoder = decoder
        if !content.isEmpty { output.messageActions.append(.messageContent(content)) }
        guard let outcome = step.outcome else { return }
        enterEndOfMessageContext()
        let rest = bytes.dropFirst(step.consumed)
        switch outcome {
        case .complete:
            output.messageActions.append(.endMessage)
            enter(.committing)
            hold(rest)
        case .failed(let failure):
            enter(.ready)   // leaving .data this way aborts the message
            reply(failure.reply)
            framer.append(rest)
            runCommands()
        }
    }

    /// Keeps input that arrives while committing, up to `heldInputLimit`.
    mutating func hold(_ bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty, !heldInputOverflowed else { return }
        guard framer.bufferedCount + bytes.count <= heldInputLimit else {
            heldInputOverflowed = true
            return
        }
        framer.append(bytes)
    }

    mutating func finishCommit(_ result: SMTPReply) -> [Action] {
        precondition(state == .committing, "no message is being committed")
        if clientGone {
            enter(.closed)
            return output.finish()
        }
        // Not the client's error: does not count towards maxErrors.
        send(result)
        enter(.ready)
        if heldInputOverflowed {
            close(with: SMTPReply(421, "4.7.0", "\(configuration.hostname) Error: too much pipelined input"))
        } else {
            runCommands()
        }
        return output.finish()
    }
}

// MARK: - Replies and state transitions

extension InboundSession {
    /// Every reply to a client command goes through here, so the error limit
    /// is applied in one place (Postfix smtpd_hard_error_limit).
    mutating func reply(_ reply: SMTPReply, countsAsError: Bool = true) {
        send(reply)
        guard countsAsError, reply.code >= 400, state != .closed else { return }
        errorCount += 1
        if errorCount >= configuration.maxErrors {
            close(with: SMTPReply(421, "4.7.0", "\(configuration.hostname) Error: too many errors"))
        }
    }

    mutating func send(_ reply: SMTPReply) {
        output.replyBytes.append(contentsOf: reply.wireBytes)
        configuration.observer?(.reply(reply))
        reportRefusal(reply)
    }

    /// Sends a final reply and closes.
    mutating func close(with reply: SMTPReply) {
        send(reply)
        enter(.closed)
    }

    /// The one place the state changes (OpenSMTPD smtp_enter_state). Entry and
    /// exit effects live here, not in the verbs.
    mutating func enter(_ next: State) {
        precondition(Self.isLegal(from: state, to: next), "illegal transition \(state) -> \(next)")
        let previous = state
        state = next
        configuration.observer?(.transition(from: previous, to: next))
        if previous == .data && next != .committing {
            decoder = nil
            output.messageActions.append(.abortMessage)
        }
        switch next {
        case .ready, .greeting:
            transaction = nil
            if previous != .ready { awaitCommand() }
        case .data:
            pendingDeadline = configuration.now() + configuration.dataTimeoutMilliseconds
            beginMessage()
        case .committing:
            decoder = nil
            pendingDeadline = nil
        case .closed:
            transaction = nil
            pendingDeadline = nil
            output.close = true
        case .connected, .mail, .rcpt:
            break
        }
    }

    static func isLegal(from: State, to: State) -> Bool {
        switch (from, to) {
        case (.closed, _), (_, .connected): false
        case (_, .closed): true
        case (.connected, .greeting): true
        case (.greeting, .ready), (.ready, .ready), (.mail, .ready), (.rcpt, .ready): true
        case (.ready, .mail), (.mail, .rcpt), (.rcpt, .data): true
        case (.data, .committing), (.data, .ready), (.committing, .ready): true
        default: false
        }
    }

    /// Entering `.data`: hand the envelope to the driver and start the content
    /// with our `Received:` header (RFC 5321 §4.4).
    mutating func beginMessage() {
        guard let transaction, let client else { preconditionFailure("DATA without a transaction") }
        let envelope = Envelope(
            sender: transaction.sender, recipients: transaction.recipients,
            body: transaction.parameters.body, smtputf8: transaction.parameters.smtputf8,
            declaredSize: transaction.parameters.size, heloName: client.name,
            clientAddress: configuration.clientAddress, withProtocol: withProtocol)
        let header = ReceivedHeader(
            heloName: client.name, clientAddress: configuration.clientAddress,
            hostname: configuration.hostname, withProtocol: withProtocol,
            recipient: transaction.recipients.count == 1 ? transaction.recipients[0] : nil,
            date: ReceivedHeader.rfc5322Date(unixSeconds: configuration.clock()))
        decoder = DataDecoder(maxMessageSize: configuration.maxMessageSize, bareLineFeed: configuration.bareLineFeed)
        output.messageActions.append(.beginMessage(envelope))
        output.messageActions.append(.messageContent(header.bytes))
    }

    /// RFC 3848 / RFC 6531 §3.7.3 `with` name for this session and transaction. The
    /// relay's listeners never speak TLS (applications on localhost), so never `…S`.
    var withProtocol: ReceivedHeader.WithProtocol {
        guard client?.extended == true else { return .smtp }
        return transaction?.parameters.smtputf8 == true ? .utf8smtp : .esmtp
    }
}

public typealias InboundAction = InboundSession.Action
public typealias InboundEnvelope = InboundSession.Envelope
public typealias InboundTimeout = InboundSession.Timeout
