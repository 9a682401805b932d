import Foundation
import Testing

/// The alerting examples in deploy/prometheus are valid rules and fire when they should
/// (`promtool test rules` feeds them synthetic series).
@Suite struct AlertRulesTests {
    static let promtool = "/usr/bin/promtool"
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("deploy/prometheus").path

    @Test func rulesPassPromtoolCheckAndTheirUnitTests() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.promtool) else {
            Issue.record("promtool is not installed (apt-get install prometheus): make test installs it")
            return
        }
        let check = try ToolRun.run(Self.promtool, ["check", "rules", Self.directory + "/smarthost-alerts.yml"])
        #expect(check.status == 0 && check.output.contains("SUCCESS: 7 rules found"), "\(check.output)")
        let script = "cd '\(Self.directory)' && exec '\(Self.promtool)' test rules smarthost-alerts.test.yml"
        let test = try ToolRun.run("/bin/sh", ["-c", script])
        #expect(test.status == 0, "\(test.output)")
    }
}
