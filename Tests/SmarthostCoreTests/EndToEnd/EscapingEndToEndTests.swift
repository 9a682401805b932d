import Foundation
import Testing
@testable import SmarthostCore

/// Issue 19 item 8 through a real relay: a message whose sender carries U+202E and a C1
/// control and whose subject carries ESC, C1 and U+202E, seen by `queue list`, `queue show`
/// and `queue list --json` (parsed by Python's json).
@Suite(.serialized) struct EscapingEndToEndTests {
    static let sender = "evil\u{202E}gnp.exe\u{9B}@acme.example"

    @Test func hostileSenderAndSubjectAreEscapedInEveryQueueView() throws {
        let relay = try RelayProcess()
        try relay.start()
        let script = """
        import smtplib, sys
        with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='app.test') as s:
            s.ehlo()
            s.sendmail(sys.argv[2], ['ops@example.com'], sys.stdin.buffer.read(), mail_options=['SMTPUTF8'])
        """
        let data = "From: x@acme.example\r\nSubject: \u{1B}]0;owned\u{07} \u{202E}fdp.exe \u{85}end\r\n\r\nbody\r\n"
        let sent = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(relay.port)", Self.sender], input: Data(data.utf8))
        try #require(sent.status == 0, "submission failed: \(sent.output)\n\(relay.log)")
        func queue(_ arguments: [String]) throws -> String {
            try ToolRun.run(RelayProcess.binaryPath, ["queue"] + arguments + ["--config", relay.configPath], timeout: 30).output
        }
        func clean(_ text: String) -> Bool {
            text.unicodeScalars.allSatisfy { $0 == "\n" || $0 == "\t" || TerminalText.unsafeClass($0) == nil }
        }
        let list = try queue(["list"])
        #expect(clean(list), "\(list.unicodeScalars.map { String($0.value, radix: 16) })")
        #expect(list.contains("<evil\\u202egnp.exe\\x9b@acme.example>"), "\(list)")
        let id = try #require(list.split(separator: " ").first.map(String.init))
        let show = try queue(["show", id])
        #expect(clean(show))
        #expect(show.contains("\\u202efdp.exe \\x85end") && show.contains("?]0;owned?"), "\(show)")
        let json = try queue(["list", "--json"])
        #expect(clean(json))
        #expect(json.contains("evil\\u202egnp.exe\\u009b@acme.example"), "\(json)")
        let check = "import json,sys\nprint(json.load(sys.stdin)[0]['sender'] == sys.argv[1])"
        let parsed = try ToolRun.run("/usr/bin/python3", ["-c", check, Self.sender], input: Data(json.utf8))
        #expect(parsed.output.hasPrefix("True"), "python's json reads the escapes back: \(parsed.output)")
        relay.stop()
    }
}
