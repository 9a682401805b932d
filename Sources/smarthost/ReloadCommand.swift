import ArgumentParser
import SmarthostCore

/// `systemctl reload smarthost` runs this (ExecReload=): unlike a bare SIGHUP it waits for
/// the daemon's verdict, so an invalid file makes the reload fail where the operator looks,
/// and the running configuration stays.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the running relay to re-read its configuration; exits 1 if it was refused.",
        discussion: """
        The daemon validates the whole file and swaps it in, or keeps the running one and \
        answers with every error. Talks to <spool>/control.sock, so it needs only the spool: \
        key of the file to find the daemon.
        """
    )

    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "Seconds to wait for the daemon's answer.")
    var timeout: Int = 30

    func validate() throws {
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
    }

    func run() throws {
        let spool = try options.loadSpoolPath()
        let client = ControlClient(spool: spool, timeoutMilliseconds: timeout * 1000)
        let reply: ControlReply?
        do {
            reply = try client.send(.reload, busyRetries: 0, delayMilliseconds: 0)
        } catch {
            printError("reload: \(error)")
            throw ExitCode(1)
        }
        guard let reply else {
            printError("reload: no relay is running on spool \(spool)")
            throw ExitCode(1)
        }
        if reply.code == .ok {
            print(reply.text)
        } else {
            printError(reply.text)
            throw ExitCode(1)
        }
    }
}
