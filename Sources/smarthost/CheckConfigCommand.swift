import ArgumentParser
import SmarthostCore

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print the resolved route of every org (passwords masked)."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load()
        print(ConfigReport.render(config), terminator: "")
    }
}
