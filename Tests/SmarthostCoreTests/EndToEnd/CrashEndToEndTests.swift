import Foundation
import Testing
@testable import SmarthostCore

/// "Accepted mail is never lost": SIGKILL the relay while clients submit; after a restart
/// every message that got 250 is in the spool, byte-intact.
@Suite(.serialized) struct CrashEndToEndTests {
    @Test func everyAcknowledgedMessageSurvivesSigkill() throws {
        let relay = try RelayProcess()
        try relay.start()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Support/submit_load.py").path
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        load.arguments = [script, "\(relay.port)", "8", "4"]
        let out = Pipe()
        load.standardOutput = out
        load.standardError = FileHandle.nullDevice
        let collected = ToolOutput()
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { collected.append(data) }
        }
        try load.run()
        // Killed mid-load, once messages are being acknowledged (the script prints each ACK
        // as it gets the 250).
        let loaded = eventually(timeout: 20) { collected.text.components(separatedBy: "ACK ").count > 11 }
        relay.kill9()
        load.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        if let rest = try? out.fileHandleForReading.readToEnd() { collected.append(rest) }
        let text = collected.text
        let acks = text.split(separator: "\n").filter { $0.hasPrefix("ACK ") }.map { $0.split(separator: " ") }
        #expect(loaded && acks.count > 10, "the load should have had messages accepted before the kill")

        // Restart on the same spool: recovery must keep every acknowledged message.
        try relay.start()
        let kept = try SpoolInspector(path: relay.spoolPath).messages()
        let byID = Dictionary(kept.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var missing: [String] = []
        for ack in acks {
            let token = String(ack[1]), id = String(ack[2])
            guard let message = byID[id] else { missing.append(token); continue }
            #expect(message.content.contains("Subject: \(token)\r\n"))
            #expect(message.content.hasSuffix("\(token)\r\n"))
        }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(10))")
        relay.stop()
    }
}
