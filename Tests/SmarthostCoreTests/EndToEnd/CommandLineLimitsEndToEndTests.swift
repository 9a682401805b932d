import Foundation
import Testing
@testable import SmarthostCore

/// Every numeric option of the command line is range-checked before use: an absurd value
/// is a usage error (exit 64, the option named), never an overflow trap.
@Suite struct CommandLineLimitsEndToEndTests {
    static let values = ["9223372036854775807", "-9223372036854775808", "0", "-1", "3601",
                         "99999999999999999999999"]

    /// Each command with a numeric option, and the arguments it needs besides.
    static let commands: [[String]] = [
        ["queue", "list"], ["queue", "show", "0123456789abcdefgh"], ["queue", "retry", "--all"],
        ["queue", "delete", "0123456789abcdefgh"], ["queue", "flush"], ["queue", "quarantine", "list"],
        ["reload"],
    ]

    @Test(arguments: commands)
    func timeoutOutOfRangeIsAUsageError(command: [String]) throws {
        for value in Self.values {
            let run = try ToolRun.run(RelayProcess.binaryPath, command + ["--config", "/nonexistent.yaml", "--timeout", value])
            #expect(run.status == 64, "\(command) --timeout \(value): status \(run.status), \(run.output)")
            #expect(run.output.contains("--timeout"), "names the option: \(run.output)")
        }
    }

    /// `smarthost test` has no timeout option of its own (the route's timeout applies).
    @Test func testCommandRefusesATimeoutOption() throws {
        let run = try ToolRun.run(RelayProcess.binaryPath, ["test", "--to", "ops@example.com", "--timeout", Self.values[0]])
        #expect(run.status == 64, "status \(run.status), \(run.output)")
    }
}
