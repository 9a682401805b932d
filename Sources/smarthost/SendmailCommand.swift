import Glibc
import SmarthostCore

/// The `sendmail`, `mailq` and `newaliases` personalities of the binary (links made by
/// `make install`), and `smarthost sendmail …`. The command line is sendmail's, parsed by
/// `SendmailArguments`; this file only does the process side: stdin, stdout, the clock,
/// the exit status (sysexits: 0, 64 usage, 65 data, 75 try again) and one-line reasons
/// on stderr prefixed `sendmail:`.
enum SendmailCommand {
    static let defaultConfig = "/etc/smarthost/smarthost.yaml"

    /// The personality named by argv[0]: its name and the arguments it implies.
    static func personality(_ argv0: String) -> (name: String, arguments: [String])? {
        let name = argv0.split(separator: "/").last.map(String.init) ?? argv0
        switch name {
        case "sendmail": return (name, [])
        case "mailq": return (name, ["-bp"])
        case "newaliases": return (name, ["-bi"])
        default: return nil
        }
    }

    static func run(_ arguments: [String], name: String = "sendmail") -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        do throws(SubmissionFailure) {
            let parsed: SendmailArguments
            do {
                parsed = try SendmailArguments.parse(arguments)
            } catch {
                throw .usage(error.description)
            }
            try run(parsed)
            return 0
        } catch {
            printError("\(name): \(error.reason)")
            return error.exitCode
        }
    }

    private static func run(_ arguments: SendmailArguments) throws(SubmissionFailure) {
        let environment = ProcessEnvironment.current()
        let configPath = arguments.configPath ?? defaultConfig
        switch arguments.mode {
        case .nothing:
            return
        case .listQueue:
            try listQueue(configPath: configPath)
        case .smtp:
            let targets = try SubmissionTarget.candidates(option: arguments.submitAddress, environment: environment, configPath: configPath)
            try SMTPStdioBridge.run(targets: targets)
        case .deliver:
            guard let input = SubmissionIO.readAll(0) else {
                throw .tempfail("cannot read the message from stdin: \(String(cString: strerror(errno)))")
            }
            var identity = LocalIdentity.current()
            if let name = (try? ConfigKeys.read(path: configPath))??.hostname { identity.hostName = name }
            let submission = try SendmailSubmission(
                arguments: arguments, input: input, identity: identity, unixSeconds: Int(time(nil)),
                uniqueToken: uniqueToken())
            let targets = try SubmissionTarget.candidates(option: arguments.submitAddress, environment: environment, configPath: configPath)
            let maildrop = Maildrop.locate(configuredSpool: (try? ConfigKeys.read(path: configPath))??.spool)
            let outcome = try SendmailDelivery.deliver(
                submission, targets: targets, maildrop: maildrop, uid: geteuid(),
                heloName: identity.hostName, nowSeconds: Int64(time(nil)))
            // Silent, like every sendmail that queues: cron mails a job's stderr, git
            // send-email and PHP log it. The relay logs the pickup; -v says it here.
            if case .queuedLocally(let name, let reason) = outcome, arguments.verbose {
                printError("sendmail: queued locally as \(name) (\(reason)); it goes out when the relay runs")
            }
        }
    }

    /// `mailq`, `sendmail -bp`: `queue list` of the spool named by the configuration's
    /// `spool:` key (the only key read).
    private static func listQueue(configPath: String) throws(SubmissionFailure) {
        let root = (try ConfigKeys.read(path: configPath))?.spool ?? RelayConfig.defaultSpool
        var info = stat()
        guard stat(root + "/queue", &info) == 0 else {
            throw SubmissionFailure(exitCode: 69, reason: "no spool at \(root) (EX_UNAVAILABLE)")
        }
        do {
            // As root, read as the spool's owner (like `queue list`): the spool refuses to be
            // opened by an account that does not own it.
            try SpoolOwner.become(ownerOf: root)
        } catch {
            throw SubmissionFailure(exitCode: 77, reason: "\(error)")
        }
        do throws(SpoolError) {
            let spool = try Spool(root: root)
            let envelopes = try QueueReport.load(spool, area: .queue)
            if envelopes.isEmpty {
                print("Mail queue is empty")
            } else {
                print(QueueReport.list(envelopes, area: .queue, now: WallClock.nowSeconds(), header: true), terminator: "")
            }
        } catch {
            throw SubmissionFailure(exitCode: 77, reason: "\(root): \(error)")
        }
    }

    /// 64 random bits (the system generator) for the Message-ID.
    private static func uniqueToken() -> String {
        String(UInt64.random(in: .min ... .max), radix: 36)
    }
}
