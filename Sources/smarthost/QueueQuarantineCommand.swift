import ArgumentParser
import Glibc
import SmarthostCore

/// Files recovery found corrupt are moved to `<spool>/quarantine/` with the reason; this is
/// how an operator sees them and, when one checks out after all, puts it back.
struct QueueQuarantine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine",
        abstract: "Messages set aside at start-up because their file was corrupt.",
        subcommands: [QuarantineList.self, QuarantineShow.self, QuarantineRelease.self],
        defaultSubcommand: QuarantineList.self
    )
}

struct QuarantineList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Name, size and reason of each quarantined file.")
    @OptionGroup var options: QueueOptions

    func run() throws {
        let spool = try options.openSpool()
        let files: [QuarantinedFile]
        do { files = try spool.quarantined() } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        if files.isEmpty && isatty(1) == 1 { print("quarantine is empty") }
        for file in files {
            print("\(file.name)  \(file.size)  \(TerminalText.escaped(file.reason))")
        }
    }
}

struct QuarantineShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "The quarantined file, non-printable bytes escaped.")
    @OptionGroup var options: QueueOptions
    @Argument(help: "The name from `quarantine list`.") var name: String

    func run() throws {
        let spool = try options.openSpool()
        do {
            print(TerminalText.escaped(String(decoding: try spool.readQuarantined(name), as: UTF8.self), keepNewlines: true))
        } catch {
            printError("\(name): not in quarantine (\(error))")
            throw ExitCode(1)
        }
    }
}

struct QuarantineRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Put quarantined messages back in the queue when their content checks out.")
    @OptionGroup var options: QueueOptions
    @Argument(help: "Queue ids from `quarantine list`.") var ids: [String]

    func run() throws {
        let queueIDs = try ids.map { text -> SpoolID in
            guard let id = SpoolID(text) else { throw ValidationError("\(text) is not a queue id (quarantine list shows them)") }
            return id
        }
        try QueueDelete.each(queueIDs, options: options) { .unquarantine($0) }
    }
}
