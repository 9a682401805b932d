import ArgumentParser
import SmarthostCore

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print the resolved route of every org (passwords masked).",
        discussion: """
        Exits 1 on an error. Warnings (legal but risky settings, such as a route whose secret \
        does not exist yet) are printed with the report and exit 0, or 1 with --strict.
        """
    )

    @OptionGroup var options: ConfigOption
    @Flag(name: .long, help: "Treat warnings as errors (for pipelines that generate configurations).")
    var strict = false
    @Flag(name: .long, help: "Print only warnings and errors (for ExecStartPre= and scripts).")
    var quiet = false

    func run() throws {
        let config = try options.load()
        let warnings = ConfigReport.warnings(config)
        if quiet {
            for warning in warnings { printError("\(options.config): warning: \(warning)") }
        } else {
            print(ConfigReport.render(config), terminator: "")
        }
        if strict && !warnings.isEmpty {
            printError("\(options.config): \(warnings.count) warning(s), refused with --strict")
            throw ExitCode(1)
        }
    }
}
