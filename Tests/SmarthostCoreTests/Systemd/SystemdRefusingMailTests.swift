import Foundation
import Glibc
import Testing

/// Issue 19, item 7: a relay below `limits.min_free_space` refuses every message with
/// `452 4.3.1`; it must not look healthy meanwhile. One warning line entering, one leaving;
/// `smarthost status`, `STATUS=` and `smarthost_refusing_mail` say so while it lasts.
@Suite(.serialized) struct SystemdRefusingMailTests {
    static func body(minFreeSpace: String, upstreamPort: UInt16) -> String {
        """
        metrics: { listen: "127.0.0.1:0" }
        limits:
          min_free_space: \(minFreeSpace)
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: \(upstreamPort)
          tls: none
        host:
          use: default
        """
    }

    static func metric(_ port: UInt16, _ series: String) -> Double? {
        guard let text = try? ToolRun.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"]).output else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    static func lines(_ log: String, containing text: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains(text) }
    }

    @Test func refusingMailIsLoggedOnceShownWhileItLastsAndClearedByReload() throws {
        let notify = try FakeNotifySocket()
        let upstream = try UpstreamProcess(mode: .plain)
        defer { upstream.stop() }
        // More than any disk this test runs on has free.
        let relay = try RelayProcess(configBody: Self.body(minFreeSpace: "1000000000GiB", upstreamPort: upstream.port),
                                     environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        defer { relay.stop() }
        let metricsPort = try #require(eventually(timeout: 10) { MetricsEndToEndTests.metricsPort(relay.log) != nil }
                                       ? MetricsEndToEndTests.metricsPort(relay.log) : nil)
        let series = #"smarthost_refusing_mail{reason="min_free_space"}"#

        for _ in 0..<3 {
            let reply = try SystemdTestSupport.submit(port: relay.port)
            #expect(!reply.hasPrefix("250"), "below the floor nothing is accepted: \(reply)")
        }
        #expect(relay.log.contains("452 4.3.1"), "\(relay.log)")
        let entering = Self.lines(relay.log, containing: "refusing mail: spool free ")
        #expect(entering.count == 1, "one line for the state, not one per message: \(entering)")
        #expect(entering.first?.hasPrefix("<4>") == true, "a warning")
        // 1000000000GiB in the binary units of `queue list` sizes.
        #expect(entering.first?.contains("< min_free_space 976563T: every message gets 452 4.3.1") == true, "\(entering)")

        let status = try ToolRun.run(RelayProcess.binaryPath, ["status", "--config", relay.configPath], timeout: 30)
        #expect(status.output.contains("refusing mail: spool free ") && status.output.contains("every message gets 452 4.3.1"),
                "\(status.output)")
        let json = try ToolRun.run(RelayProcess.binaryPath, ["status", "--json", "--config", relay.configPath], timeout: 30)
        #expect(json.output.contains("\"refusing_mail\": {\"reason\": \"min_free_space\""), "\(json.output)")
        #expect(Self.metric(metricsPort, series) == 1)
        #expect(notify.waitFor("READY", "1")?.message.fields["STATUS"]?.hasPrefix("refusing mail: spool free ") == true,
                "STATUS= from the start")

        // A reload lowers the floor: one leaving line, status clear, mail accepted again.
        let upPort = upstream.port
        try relay.writeConfig(body: Self.body(minFreeSpace: "1MiB", upstreamPort: upPort), listen: ["127.0.0.1:\(relay.port)"])
        relay.signal(SIGHUP)
        #expect(eventually(timeout: 10) { relay.log.contains("reloaded") })
        let leaving = Self.lines(relay.log, containing: "accepting mail again: spool free ")
        #expect(leaving.count == 1 && leaving.first?.hasPrefix("<4>") == true, "\(leaving)")
        #expect(Self.lines(relay.log, containing: "refusing mail: spool free ").count == 1)
        let after = try ToolRun.run(RelayProcess.binaryPath, ["status", "--config", relay.configPath], timeout: 30)
        #expect(!after.output.contains("refusing mail"), "\(after.output)")
        #expect(Self.metric(metricsPort, series) == 0)
        #expect(eventually(timeout: 10) {
            notify.messages.last { $0.fields["STATUS"] != nil }?.fields["STATUS"]?.contains("refusing") == false
        }, "STATUS= clear again")
        #expect(try SystemdTestSupport.submit(port: relay.port).hasPrefix("250 "))
        #expect(upstream.waitForMessages(1).count == 1)
    }
}
