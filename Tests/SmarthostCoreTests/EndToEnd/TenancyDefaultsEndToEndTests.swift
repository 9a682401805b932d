import Foundation
import Testing
@testable import SmarthostCore

/// Issue 19, item 5, against a real relay: one local user cannot starve the others, a
/// connection's life is bounded, and client-chosen org ids make no metric series.
@Suite(.serialized) struct TenancyDefaultsEndToEndTests {
    private static func socketDirectory() throws -> String {
        let directory = "/tmp/smarthost-fair-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The reported case with the default limits (max_connections 1 000, no per-client key):
    /// 1 001 connections from 127.0.0.1, then another address and a uid on the Unix socket.
    /// Before issue 19 the first 1 000 were greeted and everyone else got `421`.
    @Test func oneClientCannotHoldEverySlot() throws {
        let directory = try Self.socketDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketPath = directory + "/smtp.sock"
        let relay = try RelayProcess(listen: ["127.0.0.1:0", "unix:\(socketPath)"])
        try relay.start()
        defer { relay.stop() }
        #expect(eventually { relay.log.contains("listening address=unix:\(socketPath)") }, "\(relay.log)")

        var held: [RawSMTPClient] = []
        var greeted = 0, refused = 0
        for _ in 0..<1001 {
            let client = try RawSMTPClient(port: relay.port)
            let reply = client.readReply()
            if reply.hasPrefix("220 ") {
                greeted += 1
                held.append(client)
            } else {
                #expect(reply == "421 4.7.0 relay.test Error: too many connections from your address", "\(reply)")
                refused += 1
            }
        }
        #expect(greeted == 100, "the default share: a tenth of max_connections")
        #expect(refused == 901)

        let other = try RawSMTPClient(port: relay.port, source: "127.0.0.2")
        #expect(other.readReply().hasPrefix("220 "), "another address still gets in")
        let robot = try RawSMTPClient(unixPath: socketPath)
        #expect(robot.readReply().hasPrefix("220 "), "a uid on the Unix socket still gets in")
        robot.send("EHLO robot.test\r\n")
        #expect(robot.readReply().hasPrefix("250"))
        let lines = relay.log.split(separator: "\n").filter { $0.contains("too many connections from your address") }
        #expect(lines.count == 1, "one line for the burst: \(lines.count)")
        withExtendedLifetime(held) {}
    }

    /// A NOOP every 300 ms, well inside idle_timeout, against max_connection_time: 2s.
    @Test func noopKeepAlivesEndAtTheConnectionTimeLimit() throws {
        let relay = try InboundLimitsEndToEndTests.relay(limits: "limits:\n  max_connection_time: 2s\n  idle_timeout: 1m")
        defer { relay.stop() }
        let client = try RawSMTPClient(port: relay.port)
        #expect(client.readReply().hasPrefix("220 "))
        let started = Date()
        var last = ""
        var noops = 0
        while Date().timeIntervalSince(started) < 20 {
            client.send("NOOP\r\n")
            last = client.readReply()
            guard last.hasPrefix("250 ") else { break }
            noops += 1
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(last == "421 4.4.2 relay.test Error: connection time limit exceeded, reconnect", "after \(noops) NOOPs")
        #expect(noops >= 3, "the NOOPs before the limit were answered")
        #expect(client.isClosedByServer())
        InboundLimitsEndToEndTests.expectRefusalLogged(relay, command: "TIMEOUT", code: 421, enhanced: "4.4.2")
    }

    /// 60 invented org ids under `org_header_trust: any`: one `org="unknown"` series, and
    /// the configured org keeps its own.
    @Test func inventedOrgIdsMakeNoNewSeries() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        defer { upstream.stop() }
        let relay = try RelayProcess(configBody: """
        metrics: { listen: "127.0.0.1:0" }
        default:
          host: 127.0.0.1
          port: \(upstream.port)
          tls: none
        orgs:
          acme:
            use: default
        """)
        try relay.start()
        defer { relay.stop() }
        let port = try #require(eventually(timeout: 10) { MetricsEndToEndTests.metricsPort(relay.log) != nil }
            ? MetricsEndToEndTests.metricsPort(relay.log) : nil)
        let scrape = { try ToolRun.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"]).output }
        let before = try scrape().split(separator: "\n").filter { !$0.hasPrefix("#") }.count

        let client = try RawSMTPClient(port: relay.port)
        _ = client.readReply()
        client.send("EHLO app.test\r\n")
        _ = client.readReply()
        for index in 0..<61 {
            let org = index == 60 ? "acme" : "invented-\(index)"
            client.send("MAIL FROM:<app@platform.example>\r\nRCPT TO:<ops@example.com>\r\nDATA\r\n")
            _ = client.readReplies(3)
            client.send("X-Smarthost-Org: \(org)\r\nSubject: \(index)\r\n\r\nbody\r\n.\r\n")
            #expect(client.readReply().hasPrefix("250 2.0.0"))
        }
        #expect(upstream.waitForMessages(61).count == 61)
        let value = { (text: String, series: String) -> Double? in
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
        }
        var text = ""
        #expect(eventually(timeout: 20) {
            text = (try? scrape()) ?? ""
            return value(text, #"smarthost_messages_delivered_total{org="unknown",route="default"}"#) == 60
        }, "\(text)")
        #expect(!text.contains("invented-"), "no series carries a client's org id")
        #expect(value(text, #"smarthost_messages_accepted_total{org="unknown",route="default"}"#) == 60)
        #expect(value(text, #"smarthost_messages_accepted_total{org="acme",route="default"}"#) == 1)
        #expect(value(text, #"smarthost_messages_delivered_total{org="acme",route="default"}"#) == 1)
        let after = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        // The unknown org's series (six counters, two queue gauges, one histogram of 15
        // buckets + 3 lines) and the upstream's own; nothing that grows with the ids.
        #expect(after - before < 60, "\(before) series lines before, \(after) after")
    }
}
