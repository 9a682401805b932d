import ArgumentParser
import Glibc
import SmarthostCore

/// `smarthost test`: one message through an org's resolved route, right now, not via the
/// queue (the product's "Test mail settings"). Prints the dialogue as it happens, secrets
/// masked, and on failure the step, the cause and the fix. Exit status 0 only on success.
struct TestRoute: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Send one test message through an org's route now and show the SMTP dialogue (secrets masked).",
        discussion: "Exits 0 when the upstream accepted the message, 1 when any step failed."
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "The org whose route to test; omit it for the host level.")
    var org: String?

    @Option(help: "One host of a route with several (host: [a, b]); default: the first.")
    var host: String?

    @Option(help: "The recipient of the test message.")
    var to: String

    @Option(help: "The envelope sender when the route has no from (default: smarthost@<hostname>).")
    var from: String?

    func validate() throws {
        for (name, address) in [("--to", to), ("--from", from ?? "x@y")] {
            guard address.contains("@"), !address.contains(where: { "<> \r\n\t".contains($0) }) else {
                throw ValidationError("\(name) must be a bare address such as ops@example.com")
            }
        }
    }

    func run() throws {
        let config = try options.load()
        let route = RouteResolver.resolve(org: org, config: config)
        var settings = route.settings
        let hosts = [settings.host] + settings.fallbackHosts
        if let host {
            guard hosts.contains(host) else {
                printError("smarthost test: \(host) is not a host of this route (its hosts: \(hosts.joined(separator: ", ")))")
                throw ExitCode(64)
            }
            settings.host = host
        }
        let request = ProbeRequest(route: settings, recipient: to, sender: from,
                                   hostname: config.hostname, orgHeader: config.orgHeader, org: org)
        Output.line("testing " + (org.map { "org \($0)" } ?? "the host level") + ":")
        Output.text(ConfigReport.explain(route, config: config))
        if hosts.count > 1 {
            let others = hosts.filter { $0 != settings.host }.joined(separator: ", ")
            Output.line("host: \(settings.host) (this test tries only it; the route's others: \(others), each with --host)")
        }
        Output.line("envelope: MAIL FROM:<\(request.effectiveSender)> RCPT TO:<\(to)>")
        Output.line("")
        let report: ProbeReport
        do {
            report = try DeliveryProbe.run(request) { Output.line($0.description) }
        } catch {
            printError("smarthost test: cannot start: \(error)")
            throw ExitCode(1)
        }
        Output.line("")
        Output.line(report.summary)
        if !report.succeeded { throw ExitCode(1) }
    }
}

/// Unbuffered stdout, so each line of the dialogue shows as it happens (a hanging step is
/// visible while it hangs) and nothing is reordered against stderr. Upstream replies are
/// text from outside — before STARTTLS, from whoever sits on the path — so control
/// characters are shown escaped, never sent to the terminal.
private enum Output {
    static func line(_ text: String) {
        self.text(text + "\n")
    }

    static func text(_ text: String) {
        let bytes = Array(TerminalText.escaped(text, keepNewlines: true, keepTabs: true).utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}
