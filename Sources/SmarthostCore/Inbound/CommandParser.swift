/// One parsed SMTP command from a client (RFC 5321 §4.1.1).
public enum SMTPCommand: Equatable, Sendable {
    case helo(domain: String)
    case ehlo(domain: String)
    case mail(MailPath, MailPath.Parameters)
    case rcpt(MailPath)
    case data
    case rset
    case noop
    case quit
    case help
    case vrfy
    /// A verb we know but do not offer (STARTTLS, AUTH, BDAT, EXPN, TURN…): 502.
    case notImplemented(Verb)

    /// Every verb the relay recognises. Verbs are matched case-insensitively (§2.4).
    public enum Verb: String, CaseIterable, Sendable {
        case helo = "HELO", ehlo = "EHLO", mail = "MAIL", rcpt = "RCPT", data = "DATA"
        case rset = "RSET", noop = "NOOP", quit = "QUIT", help = "HELP", vrfy = "VRFY"
        // Recognised so that they get 502 (not implemented), not 500 (unknown).
        case starttls = "STARTTLS", auth = "AUTH", bdat = "BDAT", expn = "EXPN"
        case turn = "TURN", etrn = "ETRN", atrn = "ATRN", send = "SEND", soml = "SOML"
        case saml = "SAML", xclient = "XCLIENT", xforward = "XFORWARD"
    }

    public var verb: Verb {
        switch self {
        case .helo: .helo
        case .ehlo: .ehlo
        case .mail: .mail
        case .rcpt: .rcpt
        case .data: .data
        case .rset: .rset
        case .noop: .noop
        case .quit: .quit
        case .help: .help
        case .vrfy: .vrfy
        case .notImplemented(let verb): verb
        }
    }
}

/// Parses one command line (the bytes before CRLF, as `LineFramer` returns them)
/// into an `SMTPCommand`, or the reply that rejects it.
public enum CommandParser {
    /// The reply for a line that is not a valid command.
    public struct Rejection: Error, Equatable, Sendable {
        public let reply: SMTPReply
        public init(_ reply: SMTPReply) { self.reply = reply }
    }

    /// The verb of the line, nil when the line has none we recognise. Lets the
    /// dispatcher apply sequence rules (503) before arguments are judged.
    public static func verb(of line: ArraySlice<UInt8>) -> SMTPCommand.Verb? {
        let word = line.prefix { $0 != Octet.space }
        guard (2...8).contains(word.count), word.allSatisfy(Octet.isAlpha) else { return nil }
        return SMTPCommand.Verb(rawValue: String(decoding: word.map(Octet.upper), as: UTF8.self))
    }

    /// Parses a whole line. `utf8Allowed` says whether the current transaction
    /// was opened with SMTPUTF8 (RFC 6531), which RCPT addresses need for UTF-8.
    /// `localPartsAllowed`: a bare local part (`<root>`) in MAIL or RCPT is a path with an
    /// empty domain, for acceptance to qualify with `hostname:`; only clients on this host
    /// get it (`InboundSession.Configuration.localPartsAllowed`), others a 553.
    public static func parse(_ line: ArraySlice<UInt8>, utf8Allowed: Bool = false,
                             localPartsAllowed: Bool = false) -> Result<SMTPCommand, Rejection> {
        // Controls other than the CRLF that ended the line are never part of a
        // command; refusing them here keeps them out of logs and addresses.
        if line.contains(where: Octet.isControl) {
            return .failure(Rejection(SMTPReply(501, "5.5.2", "Syntax error: control characters in command")))
        }
        guard let verb = verb(of: line) else {
            return .failure(Rejection(SMTPReply(500, "5.5.2", "Error: command not recognized")))
        }
        let arguments = argumentBytes(of: line)
        do {
            return .success(try command(verb, arguments, utf8Allowed: utf8Allowed, localPartsAllowed: localPartsAllowed))
        } catch {
            return .failure(error)
        }
    }

    /// What follows the verb and its one space, trailing spaces dropped.
    private static func argumentBytes(of line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var rest = line.drop { $0 != Octet.space }.dropFirst()
        while rest.last == Octet.space { rest = rest.dropLast() }
        return rest
    }

    private static func command(_ verb: SMTPCommand.Verb, _ arguments: ArraySlice<UInt8>, utf8Allowed: Bool,
                                localPartsAllowed: Bool) throws(Rejection) -> SMTPCommand {
        switch verb {
        case .helo: return .helo(domain: try heloName(arguments, verb: verb))
        case .ehlo: return .ehlo(domain: try heloName(arguments, verb: verb))
        case .mail: return try mail(arguments, localPartsAllowed: localPartsAllowed)
        case .rcpt: return try rcpt(arguments, utf8Allowed: utf8Allowed, localPartsAllowed: localPartsAllowed)
        case .data: try noArguments(arguments, verb); return .data
        case .rset: try noArguments(arguments, verb); return .rset
        case .quit: try noArguments(arguments, verb); return .quit
        case .noop: return .noop          // §4.1.1.9: the argument is ignored
        case .help: return .help          // §4.1.1.8: the topic is ignored
        case .vrfy: return .vrfy          // answered 252 whatever it asks (§3.5.3)
        default: return .notImplemented(verb)
        }
    }

    private static func noArguments(_ arguments: ArraySlice<UInt8>, _ verb: SMTPCommand.Verb) throws(Rejection) {
        guard arguments.isEmpty else {
            throw Rejection(SMTPReply(501, "5.5.4", "Syntax: \(verb.rawValue)"))
        }
    }

    /// HELO/EHLO take a domain or an address literal (§4.1.1.1).
    private static func heloName(_ arguments: ArraySlice<UInt8>, verb: SMTPCommand.Verb) throws(Rejection) -> String {
        guard !arguments.isEmpty else {
            throw Rejection(SMTPReply(501, "5.5.4", "Syntax: \(verb.rawValue) hostname"))
        }
        let valid = arguments.first == Octet.openBracket
            ? MailPath.DomainSyntax.isAddressLiteral(arguments)
            : MailPath.DomainSyntax.isDomain(arguments, utf8: false, allowUnderscore: true)
        guard valid else {
            throw Rejection(SMTPReply(501, "5.5.4", "Error: invalid \(verb.rawValue) hostname"))
        }
        return String(decoding: arguments, as: UTF8.self)
    }

    // MARK: MAIL and RCPT

    private static let badSender = Rejection(SMTPReply(501, "5.1.7", "Error: bad sender address syntax"))
    private static let badRecipient = Rejection(SMTPReply(501, "5.1.3", "Error: bad recipient address syntax"))
    private static let needsSMTPUTF8 = Rejection(SMTPReply(553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8"))
    /// RFC 5321 §4.1.2 wants a domain; a bare local part means "this host" only when the
    /// client is on it (cron, mailx, PHP). From elsewhere it would name our users for
    /// another machine's: refused, and said so rather than "bad syntax". 553 is §4.2.2's
    /// "mailbox name not allowed"; 5.1.7 / 5.1.3 RFC 3463's sender / recipient syntax.
    private static let senderNeedsDomain = Rejection(SMTPReply(
        553, "5.1.7", "Error: sender address needs a domain (a bare local part is taken only from this host)"))
    private static let recipientNeedsDomain = Rejection(SMTPReply(
        553, "5.1.3", "Error: recipient address needs a domain (a bare local part is taken only from this host)"))

    /// `MAIL FROM:<reverse-path> [SP Mail-parameters]` (§4.1.1.2).
    private static func mail(_ arguments: ArraySlice<UInt8>, localPartsAllowed: Bool) throws(Rejection) -> SMTPCommand {
        guard let (pathBytes, parameterBytes) = splitPath(arguments, keyword: "FROM:") else { throw badSender }
        let parameters = try mailParameters(parameterBytes)
        let path: MailPath
        do {
            path = try MailPath.parse(pathBytes, role: .reversePath, utf8Allowed: parameters.smtputf8, localOnlyAllowed: true)
        } catch {
            throw error == .needsSMTPUTF8 ? needsSMTPUTF8 : badSender
        }
        if path.domain.isEmpty, !path.isNull, !localPartsAllowed { throw senderNeedsDomain }
        return .mail(path, parameters)
    }

    /// `RCPT TO:<forward-path> [SP Rcpt-parameters]` (§4.1.1.3). We offer no
    /// RCPT parameter (no DSN), so any is unknown: 555 (§4.1.1.11).
    private static func rcpt(_ arguments: ArraySlice<UInt8>, utf8Allowed: Bool,
                             localPartsAllowed: Bool) throws(Rejection) -> SMTPCommand {
        guard let (pathBytes, parameterBytes) = splitPath(arguments, keyword: "TO:") else { throw badRecipient }
        let path: MailPath
        do {
            path = try MailPath.parse(pathBytes, role: .forwardPath, utf8Allowed: utf8Allowed, localOnlyAllowed: true)
        } catch {
            throw error == .needsSMTPUTF8 ? needsSMTPUTF8 : badRecipient
        }
        // `<Postmaster>` without a domain is every server's to accept (§4.1.1.3).
        if path.domain.isEmpty, !path.isPostmaster, !localPartsAllowed { throw recipientNeedsDomain }
        if let first = parameterBytes.split(separator: Octet.space).first {
            throw unsupported(first)
        }
        return .rcpt(path)
    }

    /// Splits `FROM:<path> params` after checking the keyword (any case). One
    /// space after the colon is tolerated: many real clients send it.
    private static func splitPath(_ arguments: ArraySlice<UInt8>, keyword: String) -> (ArraySlice<UInt8>, ArraySlice<UInt8>)? {
        let key = Array(keyword.utf8)
        guard arguments.count > key.count, arguments.prefix(key.count).map(Octet.upper) == key else { return nil }
        var rest = arguments.dropFirst(key.count)
        if rest.first == Octet.space { rest = rest.dropFirst() }
        guard rest.first == Octet.less, let close = closingBracket(rest) else { return nil }
        let path = rest[...close]
        let parameters = rest[(close + 1)...]
        guard parameters.isEmpty || parameters.first == Octet.space else { return nil }
        return (path, parameters.drop { $0 == Octet.space })
    }

    /// The `>` closing the path; a `>` inside a quoted local part does not count.
    private static func closingBracket(_ bytes: ArraySlice<UInt8>) -> Int? {
        var quoted = false
        var escaped = false
        for index in bytes.indices {
            let byte = bytes[index]
            if escaped { escaped = false; continue }
            if quoted && byte == Octet.backslash { escaped = true; continue }
            if byte == Octet.quote { quoted.toggle() }
            if byte == Octet.greater && !quoted { return index }
        }
        return nil
    }

    /// `esmtp-param *(SP esmtp-param)`, esmtp-param = keyword ["=" value].
    /// SIZE (RFC 1870 §6), BODY (RFC 6152 §2), SMTPUTF8 (RFC 6531 §3.4).
    private static func mailParameters(_ bytes: ArraySlice<UInt8>) throws(Rejection) -> MailPath.Parameters {
        var parameters = MailPath.Parameters()
        var seen: Set<String> = []
        for parameter in bytes.split(separator: Octet.space) {
            guard isParameterSyntax(parameter) else {
                throw Rejection(SMTPReply(501, "5.5.4", "Error: bad parameter syntax"))
            }
            let keyword = String(decoding: parameter.prefix { $0 != Octet.equals }.map(Octet.upper), as: UTF8.self)
            let value = parameter.firstIndex(of: Octet.equals).map { parameter[($0 + 1)...] }
            guard seen.insert(keyword).inserted else {
                throw Rejection(SMTPReply(501, "5.5.4", "Error: duplicate \(keyword) parameter"))
            }
            try apply(keyword, value, parameter, to: &parameters)
        }
        return parameters
    }

    /// `esmtp-keyword ["=" esmtp-value]`: keyword `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`,
    /// value of `%d33-60 / %d62-126` (§4.1.2) or UTF-8 (RFC 6531 §3.3).
    private static func isParameterSyntax(_ parameter: ArraySlice<UInt8>) -> Bool {
        let keyword = parameter.prefix { $0 != Octet.equals }
        guard let first = keyword.first, Octet.isAlpha(first) || Octet.isDigit(first),
              keyword.allSatisfy({ Octet.isAlpha($0) || Octet.isDigit($0) || $0 == UInt8(ascii: "-") }) else { return false }
        guard keyword.count < parameter.count else { return true }
        let value = parameter[(keyword.endIndex + 1)...]
        return !value.isEmpty && !value.contains(Octet.equals)
    }

    private static func apply(_ keyword: String, _ value: ArraySlice<UInt8>?, _ raw: ArraySlice<UInt8>,
                              to parameters: inout MailPath.Parameters) throws(Rejection) {
        let invalid = Rejection(SMTPReply(501, "5.5.4", "Error: bad \(keyword) parameter value"))
        switch keyword {
        case "SIZE":
            guard let value, (1...20).contains(value.count), value.allSatisfy(Octet.isDigit) else { throw invalid }
            parameters.size = value.reduce(0) { total, digit in
                let (times, overflowA) = total.multipliedReportingOverflow(by: 10)
                let (sum, overflowB) = times.addingReportingOverflow(Int(digit - 0x30))
                return overflowA || overflowB ? Int.max : sum
            }
        case "BODY":
            let text = value.map { String(decoding: $0.map(Octet.upper), as: UTF8.self) }
            guard let text, let body = MailPath.BodyType(rawValue: text) else { throw invalid }
            parameters.body = body
        case "SMTPUTF8":
            guard value == nil else { throw invalid }
            parameters.smtputf8 = true
        default:
            throw unsupported(raw)
        }
    }

    private static func unsupported(_ parameter: ArraySlice<UInt8>) -> Rejection {
        let keyword = String(decoding: parameter.prefix { $0 != Octet.equals }.prefix(32), as: UTF8.self)
        return Rejection(SMTPReply(555, "5.5.4", "Error: unsupported parameter \(keyword)"))
    }
}

private typealias Octet = LineFramer.Octet
