/// The inbound verbs as a table (Postfix `smtpd_cmd_table`): each row names a
/// verb, the flags the dispatcher checks before any verb code runs, and the
/// handler that does the verb's work. Sequence errors (503), "not implemented"
/// (502) and the pipelining synchronization check are applied once, by
/// `InboundSession.dispatch`, never inside a handler.
public enum InboundCommandTable {
    public struct Flags: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Needs HELO/EHLO first (RFC 5321 §4.1.4).
        public static let needsHelo = Flags(rawValue: 1 << 0)
        /// Not inside a transaction: MAIL cannot nest (§4.1.1.2).
        public static let noTransaction = Flags(rawValue: 1 << 1)
        /// Needs a MAIL transaction (§4.1.1.3).
        public static let needsMail = Flags(rawValue: 1 << 2)
        /// Needs at least one accepted recipient (§4.1.1.4).
        public static let needsRecipient = Flags(rawValue: 1 << 3)
        /// Must be the last command of a pipelined group (RFC 2920 §3.1): bytes
        /// already behind it were sent before the client saw our reply.
        public static let endsGroup = Flags(rawValue: 1 << 4)
        /// Recognised, not offered: 502 (§4.2.4).
        public static let notImplemented = Flags(rawValue: 1 << 5)
        /// Moves no mail forward (NOOP, RSET, HELP, VRFY): past a limit each one counts as
        /// an error, so a client cannot keep the relay busy with them (Postfix
        /// smtpd_junk_command_limit).
        public static let junk = Flags(rawValue: 1 << 6)
    }

    struct Row: Sendable {
        let verb: SMTPCommand.Verb
        let flags: Flags
        let handler: @Sendable (inout InboundSession, SMTPCommand) -> Void
    }

    static let rows: [Row] = [
        Row(verb: .helo, flags: [], handler: { $0.handleHelo($1) }),
        Row(verb: .ehlo, flags: [], handler: { $0.handleHelo($1) }),
        Row(verb: .mail, flags: [.needsHelo, .noTransaction], handler: { $0.handleMail($1) }),
        Row(verb: .rcpt, flags: [.needsHelo, .needsMail], handler: { $0.handleRcpt($1) }),
        Row(verb: .data, flags: [.needsHelo, .needsMail, .needsRecipient, .endsGroup], handler: { s, _ in s.handleData() }),
        Row(verb: .rset, flags: [.junk], handler: { s, _ in s.handleRset() }),
        Row(verb: .noop, flags: [.junk], handler: { s, _ in s.reply(SMTPReply(250, "2.0.0", "Ok")) }),
        Row(verb: .quit, flags: [], handler: { s, _ in s.close(with: SMTPReply(221, "2.0.0", "Bye")) }),
        Row(verb: .help, flags: [.junk], handler: { s, _ in s.reply(helpReply) }),
        // §3.5.3: 252 when we will not verify but will try delivery.
        Row(verb: .vrfy, flags: [.junk], handler: { s, _ in
            s.reply(SMTPReply(252, "2.0.0", "Cannot VRFY user; send mail and delivery will be attempted"))
        }),
    ] + SMTPCommand.Verb.allCases.filter(isNotImplemented).map {
        Row(verb: $0, flags: [.notImplemented], handler: { _, _ in preconditionFailure("dispatched a refused verb") })
    }

    private static let index: [SMTPCommand.Verb: Row] = Dictionary(uniqueKeysWithValues: rows.map { ($0.verb, $0) })

    static func row(for verb: SMTPCommand.Verb) -> Row {
        guard let row = index[verb] else { preconditionFailure("no table row for \(verb)") }
        return row
    }

    public static func flags(for verb: SMTPCommand.Verb) -> Flags {
        row(for: verb).flags
    }

    private static func isNotImplemented(_ verb: SMTPCommand.Verb) -> Bool {
        switch verb {
        case .helo, .ehlo, .mail, .rcpt, .data, .rset, .noop, .quit, .help, .vrfy: false
        case .starttls, .auth, .bdat, .expn, .turn, .etrn, .atrn, .send, .soml, .saml, .xclient, .xforward: true
        }
    }

    private static let helpReply = SMTPReply(214, "2.0.0",
        "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY")
}

// MARK: - Dispatcher

extension InboundSession {
    /// Runs one command line: generic checks from the table row, then parsing,
    /// then the verb's handler.
    mutating func dispatch(_ line: ArraySlice<UInt8>) {
        let row = CommandParser.verb(of: line).map(InboundCommandTable.row(for:))
        let utf8Allowed = transaction?.parameters.smtputf8 ?? false
        let parsed = CommandParser.parse(line, utf8Allowed: utf8Allowed, localPartsAllowed: configuration.localPartsAllowed)
        noteContext(of: row?.verb, parsed: parsed)
        if let row, let refusal = refusal(for: row.flags) {
            reply(refusal)
            return
        }
        switch parsed {
        case .failure(let rejection):
            reply(rejection.reply)
        case .success(let command):
            guard let row else { preconditionFailure("parsed a command without a verb row") }
            if row.flags.contains(.endsGroup) && framer.bufferedCount > 0 {
                // The client sent on before it could see 354: those bytes must
                // never be read as content (RFC 2920 §3.1).
                close(with: SMTPReply(554, "5.5.0", "Error: SMTP protocol synchronization"))
                return
            }
            row.handler(&self, command)
            if row.flags.contains(.junk) { countJunk() }
        }
    }

    /// The command being answered and the addresses it names, for a refusal's log line.
    mutating func noteContext(of verb: SMTPCommand.Verb?, parsed: Result<SMTPCommand, CommandParser.Rejection>) {
        commandContext = CommandContext(command: verb?.rawValue ?? InboundRefusal.unknown, sender: transaction?.sender)
        switch parsed {
        case .success(.mail(let sender, _)): commandContext.sender = sender
        case .success(.rcpt(let recipient)): commandContext.recipient = recipient
        default: break
        }
    }

    /// Past `junkCommandLimit` junk commands in a session, each further one counts as an
    /// error, so the error limit ends a flood of them with 421.
    mutating func countJunk() {
        junkCount += 1
        guard junkCount > Self.junkCommandLimit, state != .closed else { return }
        errorCount += 1
        if errorCount >= configuration.maxErrors {
            close(with: SMTPReply(421, "4.7.0", "\(configuration.hostname) Error: too many commands that move no mail"))
        }
    }

    /// The generic rules of the table flags, in Postfix's order; nil when the
    /// command may run in the current state.
    func refusal(for flags: InboundCommandTable.Flags) -> SMTPReply? {
        let inTransaction = state == .mail || state == .rcpt
        if flags.contains(.notImplemented) {
            return SMTPReply(502, "5.5.1", "Error: command not implemented")
        }
        if flags.contains(.needsHelo) && client == nil {
            return SMTPReply(503, "5.5.1", "Error: send HELO/EHLO first")
        }
        if flags.contains(.noTransaction) && inTransaction {
            return SMTPReply(503, "5.5.1", "Error: nested MAIL command")
        }
        if flags.contains(.needsMail) && !inTransaction {
            return SMTPReply(503, "5.5.1", "Error: need MAIL command")
        }
        if flags.contains(.needsRecipient) && state != .rcpt {
            return SMTPReply(503, "5.5.1", "Error: need RCPT command")
        }
        return nil
    }
}

// MARK: - Verb handlers

extension InboundSession {
    /// HELO/EHLO: §4.1.4 — either may come at any time and resets the transaction.
    /// Their 250 reply carries no enhanced code (RFC 2034 §3).
    mutating func handleHelo(_ command: SMTPCommand) {
        switch command {
        case .ehlo(let name):
            client = ClientGreeting(name: name, extended: true)
            enter(.ready)
            send(SMTPReply(code: 250, enhanced: nil, lines: [
                configuration.hostname, "PIPELINING", "SIZE \(configuration.maxMessageSize)",
                "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "HELP",
            ]))
        case .helo(let name):
            client = ClientGreeting(name: name, extended: false)
            enter(.ready)
            send(SMTPReply(250, nil, configuration.hostname))
        default:
            preconditionFailure("HELO row got \(command)")
        }
    }

    mutating func handleMail(_ command: SMTPCommand) {
        guard case .mail(let sender, let parameters) = command else { preconditionFailure("MAIL row got \(command)") }
        // RFC 1870 §6.1: a declared size over our limit is refused at MAIL.
        if let size = parameters.size, size > configuration.maxMessageSize {
            reply(SMTPReply(552, "5.3.4", "Error: message size exceeds fixed limit"))
            return
        }
        if let refusal = configuration.storageCheck?(parameters.size ?? 0) {
            // The relay's trouble, not the client's: not counted as an error.
            reply(refusal, countsAsError: false)
            return
        }
        transaction = Transaction(sender: sender, parameters: parameters)
        enter(.mail)
        reply(SMTPReply(250, "2.1.0", "Ok"))
    }

    mutating func handleRcpt(_ command: SMTPCommand) {
        guard case .rcpt(let recipient) = command, var transaction else { preconditionFailure("RCPT row got \(command)") }
        // §4.5.3.1.8: 452 makes the client send the rest in a later transaction.
        // Not counted as an error: a client with many recipients is not misbehaving —
        // until it overshoots by more than `recipientOvershootLimit` without listening
        // (Postfix's smtpd_recipient_overshoot_limit); then each one is, up to the 421.
        guard transaction.recipients.count < configuration.maxRecipients else {
            recipientOvershoot += 1
            reply(SMTPReply(452, "4.5.3", "Error: too many recipients"),
                  countsAsError: recipientOvershoot > Self.recipientOvershootLimit)
            return
        }
        transaction.recipients.append(recipient)
        self.transaction = transaction
        if state == .mail { enter(.rcpt) }
        reply(SMTPReply(250, "2.1.5", "Ok"))
    }

    /// 354 takes no enhanced code: RFC 3463 defines none for class 3.
    mutating func handleData() {
        // The disk may have filled since MAIL: say so now rather than after the content.
        if let refusal = configuration.storageCheck?(transaction?.parameters.size ?? 0) {
            transaction = nil
            enter(.ready)
            reply(refusal, countsAsError: false)
            return
        }
        send(SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>"))
        enter(.data)
    }

    mutating func handleRset() {
        if state == .mail || state == .rcpt { enter(.ready) }
        reply(SMTPReply(250, "2.0.0", "Ok"))
    }
}
