import ArgumentParser
import SmarthostCore

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the relay in the foreground (systemd Type=notify)."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        // Before anything can start a thread (loading the configuration included): see
        // ProcessSignals for why every thread must block HUP, INT and TERM.
        ProcessSignals.blockInThisThread()
        let config = try options.load()
        // The secrets are in memory from here on: no core file, no ptrace by our own uid.
        ProcessHardening.forbidCoreDumps()
        let status = Daemon.run(config: config, configPath: options.config)
        if status != 0 { throw ExitCode(status) }
    }
}
