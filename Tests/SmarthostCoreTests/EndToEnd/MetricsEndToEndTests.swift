import Foundation
import Testing
@testable import SmarthostCore

/// `/metrics` scraped with real clients (curl, promtool) from a relay that really relayed:
/// the counters move by exactly what the test sent, per org and route.
@Suite(.serialized) struct MetricsEndToEndTests {
    static let promtool = "/usr/bin/promtool"

    private func scrape(_ port: UInt16, path: String = "/metrics") throws -> ToolRun {
        try ToolRun.run("/usr/bin/curl", ["-sS", "-i", "--max-time", "5", "http://127.0.0.1:\(port)\(path)"])
    }

    private func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func countersMoveByWhatWasSentPerOrgAndRoute() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        defer { upstream.stop() }
        let relay = try RelayProcess(configBody: """
        metrics: { listen: "127.0.0.1:0" }
        queue: { retry_min: 1s, retry_max: 2s }
        default:
          host: 127.0.0.1
          port: \(upstream.port)
          tls: none
        orgs:
          acme:
            use: default
            senders: ["*@acme.example"]
          globex:
            use: default
        """)
        try relay.start()
        defer { relay.stop() }
        let port = try #require(eventually(timeout: 10) { Self.metricsPort(relay.log) != nil } ? Self.metricsPort(relay.log) : nil)

        // Before any mail: every configured org is there, at zero.
        let first = try scrape(port).output
        #expect(first.hasPrefix("HTTP/1.1 200 OK"))
        #expect(first.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(value(first, #"smarthost_messages_accepted_total{org="globex",route="default"}"#) == 0, "\(first)")
        #expect(first.contains(#"smarthost_build_info{version="#))
        #expect(value(first, #"smarthost_messages_refused_total{class="5xx"}"#) == 0)

        // One refusal (503, RCPT before MAIL): the refusal counter by reply class moves by one.
        let refused = try RawSMTPClient(port: relay.port)
        _ = refused.readReply()
        refused.send("EHLO client.test\r\nRCPT TO:<x@example.com>\r\nQUIT\r\n")
        #expect(refused.readReplies(3).map { String($0.prefix(3)) } == ["250", "503", "221"])

        for index in 0..<3 {
            try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "robot@acme.example", to: ["ops@example.com"],
                                                   data: "Subject: acme \(index)\r\n\r\nbody\r\n")
        }
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "app@platform.example", to: ["ops@example.com"],
                                               data: "Subject: host\r\n\r\nbody\r\n")
        #expect(upstream.waitForMessages(4).count == 4)
        #expect(eventually(timeout: 10) {
            let text = (try? scrape(port).output) ?? ""
            return value(text, #"smarthost_messages_delivered_total{org="-",route="default"}"#) == 1
        })
        let text = try scrape(port).output
        #expect(value(text, #"smarthost_messages_accepted_total{org="acme",route="default"}"#) == 3)
        #expect(value(text, #"smarthost_messages_delivered_total{org="acme",route="default"}"#) == 3)
        #expect(value(text, #"smarthost_messages_accepted_total{org="-",route="default"}"#) == 1)
        #expect(value(text, #"smarthost_messages_accepted_total{org="globex",route="default"}"#) == 0)
        #expect(value(text, #"smarthost_messages_refused_total{class="5xx"}"#) == 1)
        #expect(value(text, #"smarthost_messages_refused_total{class="4xx"}"#) == 0)
        #expect(value(text, #"smarthost_queue_messages{org="acme",route="default"}"#) == 0)
        #expect(value(text, #"smarthost_route_up{upstream="127.0.0.1:\#(upstream.port)"}"#) == 1)
        #expect(value(text, #"smarthost_delivery_latency_seconds_count{org="acme",route="default"}"#) == 3)
        #expect((value(text, #"smarthost_upstream_connect_seconds_count{upstream="127.0.0.1:\#(upstream.port)"}"#) ?? 0) >= 1)
        #expect(!text.contains("smarthost_upstream_auth_seconds"), "no AUTH on this route")
        #expect((value(text, #"smarthost_received_bytes_total{org="acme",route="default"}"#) ?? 0) > 0)
        #expect(!text.contains("127.0.0.1\",") || !text.contains("client"), "no client address as a label")

        if FileManager.default.isExecutableFile(atPath: Self.promtool) {
            let body = String(text[text.range(of: "\r\n\r\n")!.upperBound...])
            let check = try ToolRun.run(Self.promtool, ["check", "metrics"], input: Data(body.utf8))
            #expect(check.status == 0, "promtool check metrics: \(check.output)")
        } else {
            Issue.record("promtool is not installed (apt-get install prometheus): make test installs it")
        }
    }

    @Test func onlyGetMetricsIsServedAndASlowClientIsCutOff() throws {
        let relay = try RelayProcess(configBody: "metrics: { listen: \"127.0.0.1:0\" }\n" + RelayProcess.defaultRoutes)
        try relay.start()
        defer { relay.stop() }
        let port = try #require(eventually(timeout: 10) { Self.metricsPort(relay.log) != nil } ? Self.metricsPort(relay.log) : nil)
        #expect(try scrape(port, path: "/").output.hasPrefix("HTTP/1.1 404 Not Found"))
        let post = try ToolRun.run("/usr/bin/curl", ["-sS", "-i", "-X", "POST", "http://127.0.0.1:\(port)/metrics"])
        #expect(post.output.hasPrefix("HTTP/1.1 405"))
        // A client that sends half a request is closed at the deadline; the relay goes on.
        let slow = try RawSMTPClient(port: port)
        slow.send("GET /metrics HTTP/1.1\r\n")
        #expect(eventually(timeout: Double(MetricsServer.requestDeadlineMilliseconds) / 1000 + 5) { slow.isClosedByServer() })
        #expect(try scrape(port).output.hasPrefix("HTTP/1.1 200 OK"))
        #expect(relay.isRunning)
    }

    static func metricsPort(_ log: String) -> UInt16? {
        guard let range = log.range(of: "metrics listening address=127.0.0.1:") else { return nil }
        return UInt16(log[range.upperBound...].prefix { $0.isNumber })
    }
}

/// A real Prometheus server (Debian's) scrapes the relay for one short run: the series it
/// stored are the relay's, with the values the test caused.
@Suite(.serialized) struct PrometheusScrapeEndToEndTests {
    static let prometheus = "/usr/bin/prometheus"

    /// A free loopback port for a server that cannot report its own (bind, read, close).
    static func freePort() throws -> UInt16 {
        let socket = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        defer { socket.close() }
        return socket.address.port
    }

    @Test func prometheusScrapesTheRelay() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.prometheus) else {
            Issue.record("prometheus is not installed (apt-get install prometheus): make test installs it")
            return
        }
        let relay = try RelayProcess(configBody: "metrics: { listen: \"127.0.0.1:0\" }\n" + RelayProcess.defaultRoutes)
        try relay.start()
        defer { relay.stop() }
        let metricsPort = try #require(eventually(timeout: 10) { MetricsEndToEndTests.metricsPort(relay.log) != nil }
            ? MetricsEndToEndTests.metricsPort(relay.log) : nil)
        try DeliveryRoutesEndToEndTests.submit(port: relay.port, from: "a@example.com", to: ["b@example.com"],
                                               data: "Subject: scraped\r\n\r\nx\r\n")

        let directory = relay.directory.appendingPathComponent("prometheus")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("prometheus.yml").path
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s }
        scrape_configs:
          - job_name: smarthost
            static_configs: [{ targets: ["127.0.0.1:\(metricsPort)"] }]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let webPort = try Self.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.prometheus)
        server.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(directory.path)/data",
                            "--web.listen-address=127.0.0.1:\(webPort)", "--log.level=warn"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }

        let query = "http://127.0.0.1:\(webPort)/api/v1/query?query=smarthost_messages_accepted_total%7Borg%3D%22-%22%7D"
        var answer = ""
        let scraped = eventually(timeout: 30) {
            answer = (try? ToolRun.run("/usr/bin/curl", ["-sS", "--max-time", "2", query]).output) ?? ""
            return answer.contains("\"job\":\"smarthost\"")
        }
        #expect(scraped, "Prometheus never stored the relay's series: \(answer)")
        #expect(answer.contains("\"value\":[") && answer.contains(",\"1\"]"), "\(answer)")
        let up = try ToolRun.run("/usr/bin/curl", ["-sS", "--max-time", "2",
                                                   "http://127.0.0.1:\(webPort)/api/v1/query?query=up"]).output
        #expect(up.contains("\"instance\":\"127.0.0.1:\(metricsPort)\"") && up.contains(",\"1\"]"), "\(up)")
    }
}
