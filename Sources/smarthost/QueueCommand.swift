import ArgumentParser
import Glibc
import SmarthostCore

struct Queue: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and manage the spool: queued messages and dead letters.",
        discussion: """
        Changes (retry, delete, flush) go through the running daemon's control socket \
        (<spool>/control.sock), so a message being delivered is never deleted or moved under it. \
        When no daemon runs they are made on the spool directly, under its lock. list and show \
        read the spool. Only the spool is needed (--spool, or the spool: key of --config); run \
        as root, the commands act as the spool's owner.
        """,
        subcommands: [QueueList.self, QueueShow.self, QueueSummaryCommand.self, QueueRetry.self, QueueDelete.self, QueueFlush.self,
                      QueueHold.self, QueueRelease.self, QueueStatus.self,
                      QueueQuarantine.self]
    )
}

/// `--config` / `--spool` / `--timeout`, shared by the queue commands. They need only the
/// spool: `--spool`, or just the `spool:` key of the configuration (no secret is read).
/// Run as root they become the spool's owner first (`SpoolOwner`).
struct QueueOptions: ParsableArguments {
    @OptionGroup var configOption: ConfigOption

    @Option(name: .long, help: "The spool directory (default: `spool:` from the configuration).")
    var spool: String?

    @Option(name: .long, help: "Seconds to wait for the daemon's answer (1-3600).")
    var timeout: Int = 10

    func validate() throws {
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
    }

    /// The spool's path; as root, also switches to its owner (once: later calls find the
    /// owner already in effect).
    func spoolPath() throws -> String {
        let root = try spool ?? configOption.loadSpoolPath()
        do {
            try SpoolOwner.become(ownerOf: root)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        return root
    }

    /// Opens an existing spool; never creates one at a mistyped path.
    func openSpool() throws -> Spool {
        let root = try spoolPath()
        var info = stat()
        guard stat(root + "/queue", &info) == 0 else {
            printError("no spool at \(root)")
            throw ExitCode(1)
        }
        return try Spool(root: root)
    }

    /// Sends `request` to the daemon (asking again while it answers BUSY for up to about
    /// the timeout), or, when none runs, carries it out on the spool under the spool lock,
    /// so a relay cannot start and recover underneath.
    func perform(_ request: ControlRequest) throws -> ControlReply {
        let root = try spoolPath()
        let client = ControlClient(spool: root, timeoutMilliseconds: timeout * 1000)
        do {
            if let reply = try client.send(request, busyRetries: timeout * 4, delayMilliseconds: 250) {
                return reply
            }
        } catch {
            printError("\(error)")
            throw ExitCode(75)  // EX_TEMPFAIL: nothing known to be changed; try again
        }
        let lock: SpoolLock
        do {
            lock = try SpoolLock.acquire(spool: root)
        } catch {
            printError("\(error); its control socket did not answer, try again")
            throw ExitCode(75)
        }
        defer { withExtendedLifetime(lock) {} }
        return DirectQueueControl(spool: try openSpool()).perform(request)
    }

    /// The running daemon's answer, or nil when none answers: for read-only views, which
    /// never fall back to editing the spool.
    func askDaemon(_ request: ControlRequest) -> ControlReply? {
        guard let root = try? spoolPath() else { return nil }
        let answer: ControlReply?? = try? ControlClient(spool: root, timeoutMilliseconds: timeout * 1000).send(request)
        guard case .some(.some(let reply)) = answer, reply.code == .ok else { return nil }
        return reply
    }

    /// Prints the reply; OK exits 0, NOTFOUND and ERROR 1, BUSY 75 (EX_TEMPFAIL).
    func report(_ reply: ControlReply) throws {
        switch reply.code {
        case .ok:
            print(reply.text)
        case .busy:
            printError(reply.text)
            throw ExitCode(75)
        case .notFound, .error:
            printError(reply.text)
            throw ExitCode(1)
        }
    }
}

/// Ids as typed (whole, or an unambiguous prefix of a message in the queue or the dead
/// letters), or the messages `--org`/`--route`/`--older-than`/`--all` select.
struct QueueSelection: ParsableArguments {
    @Option(name: .long, help: "Only this org's messages (\"-\" for the host level).") var org: String?
    @Option(name: .long, help: "Only messages on this route (as queue list shows it, host:port).") var route: String?
    @Option(name: .customLong("older-than"), help: "Only messages received longer ago than this (30m, 2h, 3d).")
    var olderThan: String?
    @Flag(name: .long, help: "Every message (of the selected area).") var all = false
    @Argument(help: "Queue ids, or unambiguous prefixes of them.") var ids: [String] = []

    var selector: QueueSelector {
        QueueSelector(org: org, route: route, olderThanSeconds: olderThan.flatMap(QueueSelector.seconds))
    }

    func validate() throws {
        if let olderThan, QueueSelector.seconds(olderThan) == nil {
            throw ValidationError("--older-than \(olderThan) is not a duration (e.g. 30m, 2h, 3d)")
        }
        let selecting = all || !selector.isEmpty
        if ids.isEmpty == !selecting { throw ValidationError("give queue ids, or --all / --org / --route / --older-than") }
    }

    /// The chosen messages of `areas`, oldest first; prefixes resolve against both areas.
    func resolve(_ spool: Spool, areas: [SpoolArea]) throws -> [SpoolID] {
        if !ids.isEmpty {
            let known = try (spool.list(.queue) + spool.list(.failed)).map(\.id)
            return try ids.map { text in
                switch QueueSelector.resolve(text, among: known) {
                case .success(let id): return id
                case .failure(let error): throw ValidationError(error.description)
                }
            }
        }
        let now = WallClock.nowSeconds()
        return try areas.flatMap { try spool.list($0) }.filter { selector.matches($0, now: now) }.map(\.id)
    }
}

struct QueueList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "One message per line: id, age, size, org, route, attempts, next try (or failed), last error (or failure reason)."
    )

    @OptionGroup var options: QueueOptions
    @Flag(name: .long, help: "List dead letters instead of the queue.") var failed = false
    @Option(name: .long, help: "Only this org's messages (\"-\" for the host level).") var org: String?
    @Option(name: .long, help: "Only messages on this route (host:port).") var route: String?
    @Option(name: .customLong("older-than"), help: "Only messages received longer ago than this (30m, 2h, 3d).")
    var olderThan: String?
    @Flag(name: .long, help: "Print a JSON array instead of columns.") var json = false

    func validate() throws {
        if let olderThan, QueueSelector.seconds(olderThan) == nil {
            throw ValidationError("--older-than \(olderThan) is not a duration (e.g. 30m, 2h, 3d)")
        }
    }

    func run() throws {
        let spool = try options.openSpool()
        let area: SpoolArea = failed ? .failed : .queue
        let selector = QueueSelector(org: org, route: route, olderThanSeconds: olderThan.flatMap(QueueSelector.seconds))
        let now = WallClock.nowSeconds()
        let envelopes = try QueueReport.load(spool, area: area).filter { selector.matches($0, now: now) }
        if json {
            print(QueueReport.json(envelopes, area: area), terminator: "")
        } else {
            let routesDown = area == .queue ? options.askDaemon(.routes).map { ControlRouteDown.parse($0.text) } ?? [] : []
            print(QueueReport.list(envelopes, area: area, now: now, header: isatty(1) == 1, routesDown: routesDown),
                  terminator: "")
        }
    }
}

struct QueueShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Envelope, delivery state and headers of one message.")

    @OptionGroup var options: QueueOptions
    @Flag(name: .long, help: "Print the whole message, not just its headers.") var body = false
    @Argument(help: "The queue id.") var id: String

    func run() throws {
        let spool = try options.openSpool()
        let known = try (spool.list(.queue) + spool.list(.failed)).map(\.id)
        let queueID: SpoolID
        switch QueueSelector.resolve(id, among: known) {
        case .success(let resolved): queueID = resolved
        case .failure(let error):
            printError(error.description)
            throw ExitCode(1)
        }
        do {
            let envelope = try spool.envelope(queueID)
            let message = try spool.readMessage(queueID)
            print(QueueReport.show(envelope, message: message, now: WallClock.nowSeconds(), body: body), terminator: "")
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

struct QueueRetry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put dead letters back in the queue, or make deferred messages due now.",
        discussion: "retry --all: every dead letter back to the queue, and every deferred message due now.")

    @OptionGroup var options: QueueOptions
    @OptionGroup var selection: QueueSelection

    func run() throws {
        let spool = try options.openSpool()
        let ids = try selection.resolve(spool, areas: [.failed, .queue])
        try QueueDelete.each(ids, options: options) { .retry($0) }
    }
}

struct QueueDelete: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Remove messages (queued or dead letters) for good.",
        discussion: "With --all, --org, --route or --older-than: queued messages, or dead letters with --failed.")

    @OptionGroup var options: QueueOptions
    @OptionGroup var selection: QueueSelection
    @Flag(name: .long, help: "Select among dead letters instead of the queue.") var failed = false

    func run() throws {
        let spool = try options.openSpool()
        try Self.each(try selection.resolve(spool, areas: [failed ? .failed : .queue]), options: options) { .delete($0) }
    }

    /// One request per id; every id is tried, the worst exit status wins.
    static func each(_ ids: [SpoolID], options: QueueOptions, _ request: (SpoolID) -> ControlRequest) throws {
        var worst: Int32 = 0
        for id in ids {
            do {
                try options.report(try options.perform(request(id)))
            } catch let exit as ExitCode {
                worst = max(worst, exit.rawValue)
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}

struct QueueFlush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush", abstract: "Try deferred messages now: all, or those given or selected.")

    @OptionGroup var options: QueueOptions
    @Option(name: .long, help: "Only this org's messages (\"-\" for the host level).") var org: String?
    @Option(name: .long, help: "Only messages on this route (host:port).") var route: String?
    @Argument(help: "Queue ids or prefixes (default: every deferred message).") var ids: [String] = []

    func run() throws {
        if ids.isEmpty && org == nil && route == nil {
            return try options.report(try options.perform(.flush(nil)))
        }
        var selection = try QueueSelection.parse(ids + (org.map { ["--org", $0] } ?? []) + (route.map { ["--route", $0] } ?? []))
        if selection.ids.isEmpty && selection.selector.isEmpty { selection.all = true }
        try QueueDelete.each(try selection.resolve(try options.openSpool(), areas: [.queue]), options: options) { .flush($0) }
    }
}

struct QueueStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Queue and delivery counts from the running daemon (or the spool).")

    @OptionGroup var options: QueueOptions

    func run() throws {
        let reply = try options.perform(.status)
        guard reply.code == .ok, let status = ControlStatus(parsing: reply.text) else {
            return try options.report(reply)
        }
        let who = status.pid > 0 ? "daemon running (pid \(status.pid))" : "daemon not running"
        print("\(who): \(status.summary)")
    }
}

struct QueueHold: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold", abstract: "Keep queued messages without delivering them, until queue release.")

    @OptionGroup var options: QueueOptions
    @OptionGroup var selection: QueueSelection

    func run() throws {
        let ids = try selection.resolve(try options.openSpool(), areas: [.queue])
        try QueueDelete.each(ids, options: options) { .hold($0) }
    }
}

struct QueueRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release", abstract: "Deliver held messages again, now.")

    @OptionGroup var options: QueueOptions
    @OptionGroup var selection: QueueSelection

    func run() throws {
        let spool = try options.openSpool()
        let ids = try selection.resolve(spool, areas: [.queue])
        let held = selection.ids.isEmpty ? try ids.filter { try spool.envelope($0).held } : ids
        try QueueDelete.each(held, options: options) { .release($0) }
    }
}

struct QueueSummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Messages per org and route by age (like Postfix's qshape); TOTAL first.")

    @OptionGroup var options: QueueOptions
    @Flag(name: .long, help: "Summarize dead letters instead of the queue.") var failed = false
    @Flag(name: .long, help: "Print JSON instead of columns.") var json = false

    func run() throws {
        let envelopes = try QueueReport.load(try options.openSpool(), area: failed ? .failed : .queue)
        let rows = QueueSummary.rows(envelopes, now: WallClock.nowSeconds())
        print(json ? QueueSummary.json(rows) : QueueSummary.text(rows), terminator: "")
    }
}
