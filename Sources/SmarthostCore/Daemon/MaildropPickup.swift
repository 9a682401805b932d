import Glibc
import Logging

/// Takes in what `sendmail` left in the maildrop (`Maildrop`), at start and every second
/// while the relay runs, on its own thread: directory scans, file reads, spool writes and
/// the wait for the committer never happen on the loop. Only the news of an accepted
/// message goes to the loop (`LoopCallback`), where the delivery scheduler hears it.
///
/// For each final name: `MaildropIntake` reads and checks it, and a whole drop file is
/// submitted through `LocalSubmissionChannel` as an SMTP client of the Unix socket with
/// the file's owner as its uid would be. The file is unlinked only after the spool has it
/// (fsynced). A refusal — not a drop file, a checksum, a link, a FIFO, oversized, a `5xx`
/// from the acceptance — is one log line and the file moves to `quarantine/` or goes; a
/// `4xx` (the spool's free-space floor) leaves it where it is for a later scan. Nothing in
/// a file can stop the thread: every outcome is a value.
final class MaildropPickup: @unchecked Sendable {
    /// sendmail already told its caller "sent": the delay until the relay has it is the
    /// delay of the mail, and a scan of an empty directory is one getdents call.
    static let scanIntervalMilliseconds = 1000
    /// After a `4xx` (the disk floor, a spool error): what frees the disk takes longer
    /// than a second, and each try would otherwise log again.
    static let deferredIntervalMilliseconds = 10_000

    private let loop: EventLoop
    private let spool: Spool
    private let logger: Logger
    private let metrics: RelayMetrics?
    private let announce: LoopCallback<CommittedMessage>
    private let lock = Mutex()
    private var config: RelayConfig
    private var stopping = false
    private var thread: SystemThread?
    // The pickup thread's own:
    /// Recipients of a file already accepted in an earlier try (a transaction past
    /// `max_recipients` succeeded, a later one got `4xx`): not sent twice.
    private var partial: [String: Int] = [:]
    /// Files whose deferral is logged already: one line per file, not one per scan.
    private var deferredLogged: Set<String> = []
    private var lastListError: String?

    /// Call on the loop: `onAccepted` runs there.
    init(loop: EventLoop, spool: Spool, config: RelayConfig, logger: Logger, metrics: RelayMetrics?,
         onAccepted: @escaping (SpoolEnvelope, [UInt8]?) -> Void) {
        self.loop = loop
        self.spool = spool
        self.config = config
        self.logger = logger
        self.metrics = metrics
        announce = LoopCallback { committed in onAccepted(committed.envelope, committed.content) }
    }

    /// Makes the directory if it is missing (saying what is wrong with it), then starts.
    func start() throws(SystemError) {
        for problem in Maildrop.prepare(spool: spool.root) {
            logger.warning("maildrop: \(problem)", metadata: ["directory": "\(spool.maildropDirectory)"])
        }
        thread = try SystemThread.start(name: "maildrop") { [self] in run() }
    }

    /// A reload: the next file is accepted under the new configuration.
    func use(_ newConfig: RelayConfig) {
        lock.withLock { config = newConfig }
    }

    /// Finishes the file in hand, then ends the thread. Idempotent.
    func stop() {
        let handle = lock.withLock { () -> SystemThread? in
            guard !stopping else { return nil }
            stopping = true
            lock.broadcast()
            return thread
        }
        handle?.join()
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func run() {
        while true {
            let delay = scan()
            let stop = lock.withLock { () -> Bool in
                if !stopping { lock.wait(milliseconds: delay) }
                return stopping
            }
            if stop { return }
        }
    }

    /// One pass over the directory; returns when to look again.
    func scan() -> Int {
        let directory = spool.maildropDirectory
        let names: [String]
        do throws(SpoolError) {
            names = try Syscall.list(directory)
            lastListError = nil
        } catch {
            if lastListError != "\(error)" {
                lastListError = "\(error)"
                logger.error("maildrop: cannot read the directory", metadata: ["directory": "\(directory)", "error": "\(error)"])
            }
            return Self.deferredIntervalMilliseconds
        }
        guard !names.isEmpty else { return Self.scanIntervalMilliseconds }
        let config = lock.withLock { self.config }
        let context = InboundContext(loop: loop, spool: spool, config: config, logger: logger)
        context.metrics = metrics
        let intake = MaildropIntake(directory: directory,
                                    maxFileSize: MaildropFormat.maxFileSize(maxContent: Int(config.limits.maxMessageSize)),
                                    nowSeconds: WallClock.nowSeconds())
        for name in names.sorted() {
            if isStopping { break }
            if !pickUp(name, intake: intake, context: context) { return Self.deferredIntervalMilliseconds }
        }
        return Self.scanIntervalMilliseconds
    }

    /// False when the relay cannot take the message now: the scan stops there.
    private func pickUp(_ name: String, intake: MaildropIntake, context: InboundContext) -> Bool {
        switch intake.take(name) {
        case .skip:
            return true
        case .remove(let reason):
            refused(name, reason: reason, quarantine: false)
            return true
        case .quarantine(let reason):
            refused(name, reason: reason, quarantine: true)
            return true
        case .message(let message, let uid):
            return submit(message, name: name, uid: uid, context: context, ageSeconds: intake.nowSeconds - message.droppedAt)
        }
    }

    private func submit(_ message: MaildropMessage, name: String, uid: UInt32?, context: InboundContext,
                        ageSeconds: Int64) -> Bool {
        let done = partial[name] ?? 0
        let envelope = SMTPSubmission.Envelope(sender: message.sender, recipients: Array(message.recipients.dropFirst(done)))
        let client = ClientIdentity.unix(uid: uid)
        let channel = LocalSubmissionChannel(context: context, client: client)
        var progress = SMTPSubmission.Progress()
        var failure: SubmissionFailure?
        do throws(SubmissionFailure) {
            try SMTPSubmission.submit(message.content, envelope: envelope, over: channel, heloName: message.heloName,
                                      timeouts: .init(), progress: &progress)
        } catch {
            failure = error
        }
        for committed in channel.accepted {
            context.messageAccepted(committed.envelope, content: committed.content, client: client)
            logger.info("picked up from the maildrop", metadata: [
                "id": "\(committed.id)", "file": "\(name)", "client": "\(client)", "age": "\(max(0, ageSeconds))s",
            ])
            loop.execute { [announce] in announce.call(committed) }
        }
        guard let failure else {
            partial[name] = nil
            deferredLogged.remove(name)
            if unlink(spool.maildropDirectory + "/" + name) != 0 {
                logger.error("maildrop: cannot remove a file taken in (it will be taken in again)", metadata: [
                    "file": "\(name)", "error": "\(String(cString: strerror(errno)))"])
            }
            return true
        }
        if failure.exitCode == SubmissionFailure.tempfail("").exitCode {
            partial[name] = done + progress.recipientsDone
            if deferredLogged.insert(name).inserted {
                logger.warning("maildrop: message deferred, kept for a later try",
                               metadata: ["file": "\(name)", "client": "\(client)", "reason": "\(failure.reason)"])
            }
            return false
        }
        partial[name] = nil
        refused(name, reason: failure.reason, quarantine: true)
        return true
    }

    /// One line, no content: the file's name, why, and where it went.
    private func refused(_ name: String, reason: String, quarantine: Bool) {
        let shown = OrgTenancy.printable(name)
        if quarantine {
            do throws(SpoolError) {
                let target = try spool.quarantineDrop(name, reason: reason)
                logger.error("maildrop file refused", metadata: ["file": "\(shown)", "reason": "\(reason)", "action": "quarantined as \(target)"])
            } catch {
                // Removing is the way out that cannot loop: a file that can be neither
                // moved nor removed is named once per scan, which the error here says.
                _ = unlink(spool.maildropDirectory + "/" + name)
                logger.error("maildrop file refused", metadata: ["file": "\(shown)", "reason": "\(reason)",
                                                                 "action": "removed (cannot quarantine: \(error))"])
            }
        } else {
            let removed = unlink(spool.maildropDirectory + "/" + name) == 0
            logger.error("maildrop file refused", metadata: ["file": "\(shown)", "reason": "\(reason)",
                                                             "action": removed ? "removed" : "cannot remove: \(String(cString: strerror(errno)))"])
        }
    }
}
