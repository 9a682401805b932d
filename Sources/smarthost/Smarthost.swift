import ArgumentParser
import Glibc
import SmarthostCore

@main
struct Smarthost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smarthost",
        abstract: "An SMTP smart-host relay: takes local mail and relays it to each organization's upstream.",
        discussion: """
        Also the machine's sendmail: `smarthost sendmail [-t] [-i] [-f ADDR] [-F NAME] [-bs] [-bp] [--] [RCPT…]` \
        (sendmail(1)'s own flags), and the same binary run as `sendmail`, `mailq` or `newaliases`.
        """,
        version: BuildInfo.summary,
        subcommands: [Serve.self, CheckConfig.self, Reload.self, Status.self, Routes.self, TestRoute.self, Queue.self]
    )

    /// argv[0] picks a personality before the argument parser sees anything: sendmail's
    /// flags (`-oi`, `-bs`, `-f addr`) are not this parser's shape.
    static func main() {
        let argv = CommandLine.arguments
        if let personality = argv.first.flatMap(SendmailCommand.personality) {
            Glibc.exit(SendmailCommand.run(personality.arguments + argv.dropFirst(), name: personality.name))
        }
        if argv.count > 1, argv[1] == "sendmail" {
            Glibc.exit(SendmailCommand.run(Array(argv.dropFirst(2))))
        }
        main(nil)
    }
}

/// `--config FILE`, shared by every command.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config: String = "/etc/smarthost/smarthost.yaml"

    /// Loads and validates the configuration, or prints every error and exits 1.
    func load() throws -> RelayConfig {
        do {
            return try RelayConfig.load(path: config, environment: ProcessEnvironment.current())
        } catch {
            printError("\(config): configuration has errors:\n\(error)")
            throw ExitCode(1)
        }
    }

    /// Only the `spool:` key: the queue tools and `reload` never resolve secrets.
    func loadSpoolPath() throws -> String {
        do {
            return try RelayConfig.loadSpoolPath(path: config)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

func printError(_ text: String) {
    var stderr = StandardError()
    print(text, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        let bytes = Array(string.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
