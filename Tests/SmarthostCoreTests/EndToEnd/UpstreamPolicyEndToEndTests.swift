import Foundation
import Testing
@testable import SmarthostCore

/// Upstream policy end to end (issue 15): a real relay against fault-injecting upstreams
/// (`faulty_upstream.py`) that throttle the way Microsoft 365 and Amazon SES do, cap the
/// recipients of a transaction, refuse connections or stall. Assertions are on what the
/// upstream received and on the spool, never on how fast the machine is.
@Suite(.serialized) struct UpstreamPolicyEndToEndTests {
    static let m365Reply = "421 4.4.2 Message submission rate for this client has exceeded the configured limit"
    static let sesReply = "454 4.7.0 Throttling failure: Maximum sending rate exceeded"

    // MARK: Helpers

    /// Submits `count` messages over one connection, subjects `<tag> 0` … `<tag> count-1`.
    static func submitMany(_ relay: RelayProcess, count: Int, tag: String, from: String = "app@platform.example",
                           to: [String] = ["ops@example.com"]) throws {
        let script = """
        import smtplib, sys
        port, count, tag, sender, rcpts = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split(',')
        with smtplib.SMTP('127.0.0.1', port, local_hostname='app.test') as s:
            for i in range(count):
                s.sendmail(sender, rcpts, ('Subject: %s %d\\r\\n\\r\\nbody %d\\r\\n' % (tag, i, i)).encode())
        """
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, "\(relay.port)", "\(count)", tag, from, to.joined(separator: ",")])
        #expect(run.status == 0, "submission failed: \(run.output)")
    }

    /// The `Subject:` of every message the upstream stored, as `<tag> <n>`.
    static func subjects(_ received: [UpstreamProcess.Received]) -> [String] {
        received.compactMap { message in
            message.content.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
        }
    }

    /// Waits until every one of `count` subjects arrived; true when they did.
    static func waitForAll(_ upstream: UpstreamProcess, tag: String, count: Int, timeout: TimeInterval) -> Bool {
        let wanted = Set((0..<count).map { "\(tag) \($0)" })
        return eventually(timeout: timeout) { wanted.isSubset(of: Set(subjects(upstream.received()))) }
    }

    static func relay(route: String, queue: String = "{ retry_min: 1s, retry_max: 4s, max_age: 1h }",
                      extra: String = "", environment: [String: String] = [:]) throws -> RelayProcess {
        let config = """
        queue: \(queue)
        \(extra)
        default:
        \(route)
        host:
          use: default
        """
        let relay = try RelayProcess(configBody: config, environment: environment)
        try relay.start()
        return relay
    }

    static func spoolIsEmpty(_ relay: RelayProcess) -> Bool {
        (try? SpoolInspector(path: relay.spoolPath).messages().isEmpty) ?? false
    }

    static func deadLetters(_ relay: RelayProcess) throws -> [SpoolInspector.Kept] {
        try SpoolInspector(path: relay.spoolPath).deadLetters()
    }

    static func lines(_ relay: RelayProcess, containing text: String) -> [Substring] {
        relay.log.split(separator: "\n").filter { $0.contains(text) }
    }

    // MARK: Throttling

    /// Microsoft 365: N messages per W seconds, then `421 4.4.2` and a hang-up. The relay,
    /// which knows no limit, slows down instead of hammering: every message arrives once,
    /// nothing is dead-lettered, the route is never "down", and the upstream answered 421
    /// far fewer times than there were messages.
    @Test func m365RateLimitSlowsTheRouteAndEverythingArrivesOnce() throws {
        let limit = 10, window = 5.0, count = 30
        let upstream = try UpstreamProcess(fault: "rate-limit", extra: ["--limit", "\(limit)", "--window", "\(window)",
                                                                         "--at", "data", "--close", "--reply", Self.m365Reply])
        defer { upstream.stop() }
        let relay = try Self.relay(route: "  host: 127.0.0.1\n  port: \(upstream.port)\n  tls: none\n  connections: 3")
        defer { relay.stop() }
        let started = Date()
        try Self.submitMany(relay, count: count, tag: "m365")
        #expect(Self.waitForAll(upstream, tag: "m365", count: count, timeout: 150), "\(relay.log)")
        let elapsed = Date().timeIntervalSince(started)
        let received = upstream.received()
        #expect(Self.subjects(received).sorted() == (0..<count).map { "m365 \($0)" }.sorted(), "each exactly once")
        #expect(eventually { Self.spoolIsEmpty(relay) })
        #expect(try Self.deadLetters(relay).isEmpty)
        #expect(!Self.lines(relay, containing: "route throttled: slowing down").isEmpty, "\(relay.log)")
        #expect(Self.lines(relay, containing: "route down").isEmpty, "throttling is not an outage: \(relay.log)")
        let throttled = upstream.throttledCount
        let deferrals = Self.lines(relay, containing: "deferred").count
        #expect(throttled > 0, "the upstream's limit was reached at all")
        #expect(throttled <= limit, "slowed down instead of hammering: \(throttled) refusals for \(count) messages")
        Self.reportRates(name: "M365-like 421 4.4.2", requested: "\(limit)/\(Int(window))s", received: received,
                         elapsed: elapsed, count: count, throttled: throttled, deferrals: deferrals, relay: relay)
    }

    /// Amazon SES: `454 4.7.0 Throttling failure` at MAIL FROM, the connection stays open.
    /// Also `status`, systemd's `STATUS=` and `/metrics` while the route is slowed.
    @Test func sesThrottlingAtMailSlowsTheRouteAndStatusAndMetricsShowIt() throws {
        let limit = 5, window = 3.0, count = 15
        let upstream = try UpstreamProcess(fault: "rate-limit", extra: ["--limit", "\(limit)", "--window", "\(window)",
                                                                         "--at", "mail", "--reply", Self.sesReply])
        defer { upstream.stop() }
        let notify = try FakeNotifySocket()
        let relay = try Self.relay(route: "  host: 127.0.0.1\n  port: \(upstream.port)\n  tls: none",
                                   extra: "metrics: { listen: \"127.0.0.1:0\" }", environment: ["NOTIFY_SOCKET": notify.path])
        defer { relay.stop() }
        let started = Date()
        try Self.submitMany(relay, count: count, tag: "ses")
        #expect(eventually(timeout: 30) { !Self.lines(relay, containing: "route throttled: slowing down").isEmpty }, "\(relay.log)")
        let route = "127.0.0.1:\(upstream.port)"

        // The pace goes back up one step per 10 s cool-down: the route stays slowed long
        // enough to be seen.
        let status = try ToolRun.run(RelayProcess.binaryPath, ["status", "--config", relay.configPath], timeout: 30).output
        #expect(status.contains("routes slowed by throttling:\n  \(route): "), "\(status)")
        let json = try ToolRun.run(RelayProcess.binaryPath, ["status", "--json", "--config", relay.configPath], timeout: 30).output
        #expect(json.contains("\"routes_slowed\": [{\"route\": \"\(route)\", \"messages_per_second\": "), "\(json)")
        #expect(eventually(timeout: 10) {
            notify.messages.contains { $0.fields["STATUS"]?.contains("routes_slowed=1 (\(route) ") == true }
        }, "\(notify.messages.compactMap { $0.fields["STATUS"] })")
        let metricsPort = try #require(Self.metricsPort(relay.log))
        let metrics = try ToolRun.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(metricsPort)/metrics"]).output
        for series in ["smarthost_route_pace_messages_per_second", "smarthost_route_pace_connections", "smarthost_route_throttled_total"] {
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("\(series){route=\"\(route)\"} ") }
            let value = line.flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect(value.map { $0 > 0 } == true, "\(series) for \(route): \(metrics)")
        }

        #expect(Self.waitForAll(upstream, tag: "ses", count: count, timeout: 120), "\(relay.log)")
        let elapsed = Date().timeIntervalSince(started)
        let received = upstream.received()
        #expect(Self.subjects(received).sorted() == (0..<count).map { "ses \($0)" }.sorted(), "each exactly once")
        #expect(eventually { Self.spoolIsEmpty(relay) })
        #expect(try Self.deadLetters(relay).isEmpty)
        #expect(Self.lines(relay, containing: "route down").isEmpty, "\(relay.log)")
        let throttled = upstream.throttledCount
        #expect(throttled <= count / 2, "slowed down instead of hammering: \(throttled) refusals for \(count) messages")
        Self.reportRates(name: "SES-like 454 4.7.0", requested: "\(limit)/\(Int(window))s", received: received,
                         elapsed: elapsed, count: count, throttled: throttled,
                         deferrals: Self.lines(relay, containing: "deferred").count, relay: relay)
    }

    // MARK: Limits

    /// `max_recipients_per_message: 100` against an upstream that refuses the 101st RCPT:
    /// 250 recipients arrive as 3 transactions of 100, 100 and 50, each recipient once.
    @Test func anEnvelopeOverTheRecipientCapArrivesInThreeTransactions() throws {
        let upstream = try UpstreamProcess(fault: "rcpt-cap", extra: ["--max-rcpt", "100"])
        defer { upstream.stop() }
        let relay = try Self.relay(route: "  host: 127.0.0.1\n  port: \(upstream.port)\n  tls: none\n  max_recipients_per_message: 100",
                                   extra: "limits: { max_recipients: 250 }")
        defer { relay.stop() }
        let recipients = (0..<250).map { String(format: "r%03d@example.com", $0) }
        try Self.submitMany(relay, count: 1, tag: "wide", to: recipients)
        let received = upstream.waitForMessages(3, timeout: 30)
        #expect(eventually { Self.spoolIsEmpty(relay) }, "\(relay.log)")
        #expect(received.count == 3)
        #expect(received.map(\.recipients.count) == [100, 100, 50])
        let all = received.flatMap(\.recipients)
        #expect(all.sorted() == recipients, "each recipient exactly once")
        #expect(Set(Self.subjects(received)) == ["wide 0"])
        // Split by the relay, not by the upstream's 452s (which would also end as 100/100/50,
        // through deferrals): no transaction tried more than the cap.
        #expect(upstream.transactions.map(\.tried) == [100, 100, 50], "no transaction over the cap: \(upstream.transactions)")
        #expect(upstream.transactions.allSatisfy { $0.result == "250" && $0.recipients == $0.tried })
        #expect(Self.lines(relay, containing: "deferred").isEmpty, "\(relay.log)")
        #expect(try Self.deadLetters(relay).isEmpty)
        #expect(Self.lines(relay, containing: "remaining=").count == 2, "two progress lines: \(relay.log)")
    }

    /// `rate: 5/s`: however many messages wait, no more than a burst plus the rate leave.
    /// The bound allows one second of slack for the time a started message takes to reach
    /// the upstream, so a loaded machine only makes the arrivals sparser.
    @Test func aRouteRateSpreadsMessagesOut() throws {
        let rate = 5.0, count = 30
        let upstream = try UpstreamProcess(fault: "none")
        defer { upstream.stop() }
        let relay = try Self.relay(route: "  host: 127.0.0.1\n  port: \(upstream.port)\n  tls: none\n  rate: 5/s")
        defer { relay.stop() }
        try Self.submitMany(relay, count: count, tag: "paced")
        #expect(Self.waitForAll(upstream, tag: "paced", count: count, timeout: 60))
        let times = upstream.received().compactMap(\.receivedAt).sorted()
        #expect(times.count == count)
        let burst = max(rate, 1), slack = rate * 1
        for i in times.indices {
            for j in times.indices where j > i {
                let allowed = burst + slack + rate * (times[j] - times[i])
                #expect(Double(j - i + 1) <= allowed, "\(j - i + 1) messages within \(times[j] - times[i]) s")
            }
        }
        if let first = times.first, let last = times.last {
            print("rate 5/s: \(count) messages over \(String(format: "%.1f", last - first)) s at the upstream")
        }
        #expect(eventually { Self.spoolIsEmpty(relay) })
    }

    // MARK: Failover

    /// `host: [127.0.0.2, 127.0.0.1]`: the primary refuses connections, so mail goes
    /// through the secondary and the log names the host; once the primary listens again
    /// (and its down time has passed), new mail goes to the primary.
    @Test func aRefusingPrimaryFailsOverToTheSecondaryAndBack() throws {
        let secondary = try UpstreamProcess(fault: "none")
        defer { secondary.stop() }
        let port = secondary.port
        let relay = try Self.relay(route: "  host: [127.0.0.2, 127.0.0.1]\n  port: \(port)\n  tls: none",
                                   queue: "{ retry_min: 1s, retry_max: 2s, max_age: 1h }")
        defer { relay.stop() }
        try Self.submitMany(relay, count: 1, tag: "failover")
        #expect(Self.waitForAll(secondary, tag: "failover", count: 1, timeout: 20), "\(relay.log)")
        let down = Self.lines(relay, containing: "upstream host down, trying the next")
        #expect(down.count == 1 && down[0].contains("host=127.0.0.2:\(port)"), "\(relay.log)")
        #expect(Self.lines(relay, containing: "delivered").contains { $0.contains("host=127.0.0.1:\(port)") }, "\(relay.log)")
        #expect(Self.lines(relay, containing: "route down").isEmpty)

        // The primary comes back on the same port. Mail keeps flowing meanwhile (a message
        // at a time, so a connection to the secondary is never idle for long): the relay
        // must still go back to the primary.
        let primary = try UpstreamProcess(fault: "none", host: "127.0.0.2", port: port)
        defer { primary.stop() }
        var sent = 0
        let back = eventually(timeout: 30) {
            if primary.received().isEmpty, secondary.received().count + primary.received().count == sent + 1 {
                sent += 1
                try? Self.submitMany(relay, count: 1, tag: "again \(sent)")
            }
            return !primary.received().isEmpty
        }
        #expect(back, "no message reached the primary after \(sent) tries: \(relay.log)")
        #expect(eventually { Self.lines(relay, containing: "upstream host up").contains { $0.contains("host=127.0.0.2:\(port)") } },
                "\(relay.log)")
        #expect(eventually { Self.spoolIsEmpty(relay) })
        let all = Self.subjects(secondary.received() + primary.received())
        #expect(all.count == Set(all).count, "nothing delivered twice: \(all)")
        #expect(all.count == sent + 1)
        #expect(try Self.deadLetters(relay).isEmpty)
    }

    // MARK: Isolation

    /// Three orgs with their own upstreams: one never answers DATA, one never greets; the
    /// third's mail is all delivered while the stalled orgs' is still in flight.
    @Test func aStalledOrgDoesNotHoldUpAnotherOrgsMail() throws {
        let stalled = try UpstreamProcess(fault: "stall-data")
        defer { stalled.stop() }
        let silent = try UpstreamProcess(fault: "stall-greeting")
        defer { silent.stop() }
        let healthy = try UpstreamProcess(fault: "none")
        defer { healthy.stop() }
        let relay = try RelayProcess(configBody: """
        queue: { retry_min: 1s, retry_max: 4s, max_age: 1h }
        \(RelayProcess.defaultRoutes)
        orgs:
          acme:
            use: custom
            senders: ["*@acme.example"]
            host: 127.0.0.1
            port: \(stalled.port)
            tls: none
            timeout: 5m
          initech:
            use: custom
            senders: ["*@initech.example"]
            host: 127.0.0.1
            port: \(silent.port)
            tls: none
            timeout: 5m
          globex:
            use: custom
            senders: ["*@globex.example"]
            host: 127.0.0.1
            port: \(healthy.port)
            tls: none
        """)
        try relay.start()
        defer { relay.stop() }
        try Self.submitMany(relay, count: 4, tag: "acme", from: "robot@acme.example")
        try Self.submitMany(relay, count: 4, tag: "initech", from: "robot@initech.example")
        #expect(eventually { stalled.connectionCount >= 1 && silent.connectionCount >= 1 }, "the stalled upstreams have their mail")
        let count = 40
        try Self.submitMany(relay, count: count, tag: "globex", from: "robot@globex.example")
        #expect(Self.waitForAll(healthy, tag: "globex", count: count, timeout: 60), "\(relay.log)")
        // Still in flight: nothing of theirs delivered, deferred or dead, all in the queue.
        let queued = try SpoolInspector(path: relay.spoolPath).messages()
        #expect(queued.count == 8 && queued.allSatisfy { ["acme", "initech"].contains($0.org) && $0.attempts == 0 },
                "\(queued.map(\.org))")
        #expect(Self.lines(relay, containing: "deferred").isEmpty, "\(relay.log)")
        #expect(Self.subjects(healthy.received()).allSatisfy { $0.hasPrefix("globex") })
        #expect(stalled.received().isEmpty && silent.received().isEmpty)
        #expect(try Self.deadLetters(relay).isEmpty)
        #expect(Self.lines(relay, containing: "route throttled").isEmpty)
    }

    // MARK: Reporting

    static func metricsPort(_ log: String) -> UInt16? {
        for line in log.split(separator: "\n") where line.contains("metrics listening") {
            if let range = line.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
               let colon = line[range].lastIndex(of: ":") {
                return UInt16(line[range][line.index(after: colon)...])
            }
        }
        return nil
    }

    /// The numbers for the closing note: requested limit, delivered rate, refusals.
    static func reportRates(name: String, requested: String, received: [UpstreamProcess.Received], elapsed: TimeInterval,
                            count: Int, throttled: Int, deferrals: Int, relay: RelayProcess) {
        let times = received.compactMap(\.receivedAt).sorted()
        let span = (times.last ?? 0) - (times.first ?? 0)
        let rate = span > 0 ? Double(times.count - 1) / span : 0
        let paces = lines(relay, containing: "route throttled: slowing down").count
        let ups = lines(relay, containing: "route pace up").count
        print("\(name): upstream allows \(requested); \(count) messages delivered in \(String(format: "%.1f", elapsed)) s, "
            + "delivered rate \(String(format: "%.2f", rate))/s over \(String(format: "%.1f", span)) s at the upstream; "
            + "\(throttled) throttling replies, \(deferrals) deferrals, \(paces) slow-downs, \(ups) pace-ups, 0 dead letters")
    }
}
