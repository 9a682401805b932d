/// The command line of `sendmail` as real callers write it (cron, mailx, PHP, git
/// send-email, Symfony), parsed the way Postfix's sendmail(1) does: getopt with Postfix's
/// option string, so `-oi` is `-o` with `i`, `-bs` is `-b` with `s`, `-fuser@x` and
/// `-f user@x` are the same, flags combine (`-ti`), and GNU-style permutation lets an
/// option follow a recipient; `--` ends the options. swift-argument-parser cannot read
/// this shape, hence a hand parser.
///
/// Options that change nothing for a relay that submits over SMTP are accepted and
/// ignored, as Postfix documents them (`-odi`, `-oem`, `-N dsn`, `-B type`…).
public struct SendmailArguments: Equatable, Sendable {
    public enum Mode: Equatable, Sendable {
        /// `-bm` (the default): read a message from stdin and submit it.
        case deliver
        /// `-bs`: speak SMTP on stdin/stdout (relayed to the listener).
        case smtp
        /// `-bp`, or run as `mailq`: list the queue.
        case listQueue
        /// `-bi`, run as `newaliases`: there are no aliases; nothing to do.
        case nothing
    }

    public var mode = Mode.deliver
    /// `-t`: recipients also from To/Cc/Bcc.
    public var extractRecipients = false
    /// `-i`, `-oi`: a line with a single `.` does not end the message.
    public var ignoreDots = false
    /// `-f`, `-r`: the envelope sender (`""` or `<>` is the null sender).
    public var sender: String?
    /// `-F`: the full name for a `From:` header we add.
    public var fullName: String?
    /// `-C` or `--config`: the relay's configuration file (only its `listen:` is read).
    public var configPath: String?
    /// `--submit host:port`: where to submit, overriding the configuration.
    public var submitAddress: String?
    /// `-v`: say on stderr when the message went to the local maildrop.
    public var verbose = false
    public var recipients: [String] = []

    public init() {}

    /// A usage error: exit 64 (EX_USAGE) with this line.
    public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Postfix sendmail.c: `getopt(argc, argv, "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx")`.
    static let optionsWithArgument: Set<Character> = ["A", "B", "C", "F", "L", "N", "O", "R", "V", "X", "b", "e", "f", "h", "o", "p", "r", "q"]
    static let flags: Set<Character> = ["G", "I", "U", "c", "i", "m", "n", "t", "v", "x"]

    /// Parses the arguments after the program name.
    public static func parse(_ arguments: [String]) throws(UsageError) -> SendmailArguments {
        var result = SendmailArguments()
        var index = 0
        var optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if optionsEnded || !argument.hasPrefix("-") || argument == "-" {
                result.recipients.append(argument)
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }
            if argument.hasPrefix("--") {
                try result.applyLong(argument, arguments, &index)
                continue
            }
            var letters = Substring(argument.dropFirst())
            while let letter = letters.first {
                letters = letters.dropFirst()
                if flags.contains(letter) {
                    result.applyFlag(letter)
                    continue
                }
                guard optionsWithArgument.contains(letter) else {
                    throw UsageError("illegal option -- \(letter)")
                }
                let value: String
                if !letters.isEmpty {
                    value = String(letters)
                    letters = ""
                } else if index < arguments.count {
                    value = arguments[index]
                    index += 1
                } else {
                    throw UsageError("option requires an argument -- \(letter)")
                }
                try result.applyOption(letter, value)
            }
        }
        return result
    }

    /// `--config FILE`, `--submit HOST:PORT` (also `--name=value`).
    private mutating func applyLong(_ argument: String, _ arguments: [String], _ index: inout Int) throws(UsageError) {
        var name = String(argument.dropFirst(2))
        var value: String?
        if let equals = name.firstIndex(of: "=") {
            value = String(name[name.index(after: equals)...])
            name = String(name[..<equals])
        }
        guard name == "config" || name == "submit" else { throw UsageError("unknown option --\(name)") }
        if value == nil {
            guard index < arguments.count else { throw UsageError("option --\(name) needs a value") }
            value = arguments[index]
            index += 1
        }
        if name == "config" { configPath = value } else { submitAddress = value }
    }

    private mutating func applyFlag(_ letter: Character) {
        switch letter {
        case "t": extractRecipients = true
        case "i": ignoreDots = true
        case "v": verbose = true
        default: break   // -G -I -U -c -m -n -x: nothing to do for an SMTP submission
        }
    }

    private mutating func applyOption(_ letter: Character, _ value: String) throws(UsageError) {
        switch letter {
        case "f", "r": sender = value
        case "F": fullName = value
        case "C": configPath = value
        case "b": try applyMode(value)
        case "o":
            // -oi is -i; every other -oX (-odi, -oem, -oA…, -oQ…) is Postfix's "ignored".
            if value == "i" { ignoreDots = true }
        case "q":
            throw UsageError("-q\(value): the relay runs its own queue; use `smarthost queue flush`")
        default:
            break   // -A -B -L -N -O -R -V -X -e -h -p: accepted and ignored, as in Postfix
        }
    }

    private mutating func applyMode(_ value: String) throws(UsageError) {
        switch value {
        case "m": mode = .deliver
        case "s": mode = .smtp
        case "p": mode = .listQueue
        case "i": mode = .nothing
        default: throw UsageError("-b\(value) is not supported (only -bm, -bs, -bp, -bi)")
        }
    }
}
