import ArgumentParser
import SmarthostCore

/// `smarthost routes`: which org a message would be given, which layer's route it then
/// takes, and why, from the same classifier and resolver the daemon uses.
struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show which route a message would take and why (passwords masked).",
        discussion: """
            With --org, as if the message carried that org header; with --sender, as if it came \
            from that envelope sender; with neither, the host level and every configured org.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "The org id, as the org header would carry it.")
    var org: String?

    @Option(help: "The envelope sender (MAIL FROM), matched against each org's senders patterns.")
    var sender: String?

    /// `make bench`: classify `--sender` this many times and print the cost per message.
    @Option(name: .customLong("repeat"), help: .hidden)
    var repetitions: Int?

    func validate() throws {
        if let repetitions, !(1...100_000_000).contains(repetitions) { throw ValidationError("--repeat must be 1 to 100000000") }
    }

    func run() throws {
        let config = try options.load()
        let classifier = OrgClassifier(config: config)
        if let repetitions, let sender {
            let start = MonotonicClock.nanoseconds()
            var matched = 0
            for _ in 0..<repetitions where classifier.classify(headerValue: nil, sender: sender).orgID != nil {
                matched += 1
            }
            let nanoseconds = Double(MonotonicClock.nanoseconds() - start) / Double(repetitions)
            print("classify: \(config.orgs.count) orgs, \(repetitions) messages, \(Int(nanoseconds.rounded())) ns per message (\(matched) matched)")
            return
        }
        if org != nil || sender != nil {
            print(Self.explain(classifier.classify(headerValue: org, sender: sender ?? ""), sender: sender, config: config),
                  terminator: "")
            return
        }
        var blocks = [Self.explain(classifier.classify(headerValue: nil, sender: ""), sender: nil, config: config)]
        for setting in config.orgs {
            blocks.append(Self.explain(classifier.classify(headerValue: setting.id, sender: ""), sender: nil, config: config))
        }
        print(blocks.joined(separator: "\n"), terminator: "")
    }

    private static func explain(_ choice: OrgChoice, sender: String?, config: RelayConfig) -> String {
        let route = RouteResolver.resolve(org: choice.orgID, config: config)
        return ConfigReport.explain(route, choice: choice, sender: sender, config: config)
    }
}
