/// `CommandParser.parse` and `MailPath.parse` on one line of arbitrary bytes.
///
/// Invariants: the result does not depend on where the slice starts; a rejection
/// is a well-formed 5xx reply; a parsed path prints as a path that parses back to
/// itself; the verb of a parsed command is the verb `verb(of:)` sees.
enum CommandFuzz {
    static func run(_ input: inout FuzzInput) {
        let utf8Allowed = input.control & 1 != 0
        let line = input.payload
        let copy = Array(line)[...]

        let result = CommandParser.parse(line, utf8Allowed: utf8Allowed)
        check(result == CommandParser.parse(copy, utf8Allowed: utf8Allowed), "parse depends on slice indices")
        switch result {
        case .success(let command):
            check(CommandParser.verb(of: line) == command.verb, "verb(of:) disagrees with parse")
            checkCommand(command, utf8Allowed: utf8Allowed)
        case .failure(let rejection):
            check((500...599).contains(rejection.reply.code), "rejection is not 5xx: \(rejection.reply)")
            check(isWellFormedReplyStream(rejection.reply.wireBytes), "malformed rejection \(rejection.reply)")
        }

        for role in [MailPath.Role.reversePath, .forwardPath] {
            let parsed = Result { () throws(MailPath.ParseError) in try MailPath.parse(line, role: role, utf8Allowed: utf8Allowed) }
            let again = Result { () throws(MailPath.ParseError) in try MailPath.parse(copy, role: role, utf8Allowed: utf8Allowed) }
            check(parsed == again, "MailPath.parse depends on slice indices")
            if case .success(let path) = parsed {
                checkRoundTrip(path, role: role, utf8Allowed: utf8Allowed)
                check(path.description.utf8.count <= line.count, "path grew when parsed")
            }
        }
    }

    private static func checkCommand(_ command: SMTPCommand, utf8Allowed: Bool) {
        switch command {
        case .mail(let path, let parameters):
            checkRoundTrip(path, role: .reversePath, utf8Allowed: parameters.smtputf8)
            check(parameters.smtputf8 || !path.isInternationalized, "UTF-8 sender without SMTPUTF8")
            if let size = parameters.size { check(size >= 0, "negative SIZE") }
        case .rcpt(let path):
            checkRoundTrip(path, role: .forwardPath, utf8Allowed: utf8Allowed)
            check(utf8Allowed || !path.isInternationalized, "UTF-8 recipient without SMTPUTF8")
            check(!path.isNull, "null recipient")
        case .helo(let domain), .ehlo(let domain):
            check(!domain.isEmpty && !domain.utf8.contains(where: { $0 < 32 || $0 == 127 || $0 == 32 }),
                  "bad HELO name accepted: \(domain.debugDescription)")
        default:
            break
        }
    }

    /// What we print (logs, the upstream envelope) must parse back to the same path.
    private static func checkRoundTrip(_ path: MailPath, role: MailPath.Role, utf8Allowed: Bool) {
        let printed = Array(path.description.utf8)[...]
        do {
            let reparsed = try MailPath.parse(printed, role: role, utf8Allowed: utf8Allowed)
            check(reparsed == path, "round trip changed \(path) into \(reparsed)")
        } catch {
            check(false, "printed path \(path.description.debugDescription) does not parse: \(error)")
        }
    }
}
