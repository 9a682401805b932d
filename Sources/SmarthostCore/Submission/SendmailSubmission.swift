/// What `sendmail` (deliver mode) submits: the envelope from the command line, `-t` and
/// the caller's identity, and the message made ready by `SubmittedMessage`. Pure: the
/// executable feeds it stdin and the clock.
public struct SendmailSubmission: Equatable, Sendable {
    public var envelope: SMTPSubmission.Envelope
    public var content: [UInt8]

    public init(arguments: SendmailArguments, input: [UInt8], identity: LocalIdentity, unixSeconds: Int,
                uniqueToken: String) throws(SubmissionFailure) {
        let sender = try Self.sender(arguments.sender, identity: identity)
        let fromAddress = sender.isEmpty ? identity.defaultSender : sender
        let message = SubmittedMessage(
            input: input, ignoreDots: arguments.ignoreDots, extractRecipients: arguments.extractRecipients,
            defaults: .init(from: UpstreamFromAddress(address: fromAddress, displayName: arguments.fullName ?? identity.fullName),
                            unixSeconds: unixSeconds, domain: identity.hostName, uniqueToken: uniqueToken))
        var recipients: [String] = []
        for argument in arguments.recipients {
            // An address never holds a control character; a CR LF here would be an attempt
            // to add commands to the dialogue.
            guard !argument.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
                throw .usage("recipient \(argument.debugDescription) holds a control character")
            }
            for address in AddressList.addresses(in: argument) {
                try recipients.append(Self.recipient(address, identity: identity, from: "the command line"))
            }
        }
        for address in message.headerRecipients {
            try recipients.append(Self.recipient(address, identity: identity, from: "the message header"))
        }
        var seen = Set<String>()
        recipients = recipients.filter { seen.insert($0.lowercased()).inserted }
        guard !recipients.isEmpty else {
            throw arguments.extractRecipients
                ? .data("no recipient addresses found in the message header (To:, Cc:, Bcc:)")
                : .usage("no recipients given (name them, or use -t to read To:, Cc:, Bcc:)")
        }
        envelope = SMTPSubmission.Envelope(sender: sender, recipients: recipients)
        content = message.content
    }

    /// `-f` qualified and checked; "" or `<>` is the null sender; none is `user@host`.
    static func sender(_ given: String?, identity: LocalIdentity) throws(SubmissionFailure) -> String {
        guard let given else { return identity.qualify(identity.defaultSender) }
        let address = identity.qualify(given)
        guard address.isEmpty || isValid(address) else { throw .usage("-f \(given) is not a mail address") }
        return address
    }

    static func recipient(_ text: String, identity: LocalIdentity, from place: String) throws(SubmissionFailure) -> String {
        let address = identity.qualify(text)
        guard isValid(address) else {
            let reason = "\(text) (from \(place)) is not a mail address"
            throw place == "the command line" ? .usage(reason) : .data(reason)
        }
        return address
    }

    /// RFC 5321 syntax, as the relay will check it; also what keeps a CR LF in an argument
    /// from ever reaching the SMTP dialogue.
    static func isValid(_ address: String) -> Bool {
        (try? MailPath.parse(Array("<\(address)>".utf8)[...], role: .forwardPath, utf8Allowed: true, localOnlyAllowed: true)) != nil
    }
}
