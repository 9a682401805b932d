import Foundation
import Glibc
import Testing

/// Issue 19: signals do what they say. Every thread of a running relay blocks HUP, INT and
/// TERM (one that did not took them with their default action: `kill -HUP` ended the relay
/// with 129, SIGTERM with 143 and no drain); SIGHUP reloads like `smarthost reload`; SIGTERM
/// lets a message being transmitted upstream finish, delivered once, and exits 0.
@Suite(.serialized) struct SystemdSignalTests {
    static func body(upstreamPort: UInt16) -> String {
        """
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: \(upstreamPort)
          tls: none
          timeout: 30s
        host:
          use: default
        """
    }

    /// `Name` and `SigBlk` of every thread of `pid`, from /proc/PID/task/*/status.
    static func threadMasks(pid: Int32) -> [(name: String, blocked: UInt64)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { task in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else { return nil }
            var name = "", blocked: UInt64?
            for line in status.split(separator: "\n") {
                if line.hasPrefix("Name:") { name = line.dropFirst(5).trimmingCharacters(in: .whitespaces) }
                if line.hasPrefix("SigBlk:") { blocked = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
            }
            return blocked.map { (name, $0) }
        }
    }

    static func bit(_ signal: Int32) -> UInt64 { 1 << UInt64(signal - 1) }

    static func count(_ text: String, in log: String) -> Int {
        log.components(separatedBy: text).count - 1
    }

    @Test func everyThreadOfARunningRelayBlocksHupIntAndTerm() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        let relay = try RelayProcess(configBody: Self.body(upstreamPort: upstream.port))
        try relay.start()
        // One message through, so the delivery side's threads (dns, spool-read, spool-record…) exist.
        #expect(try SystemdTestSupport.submit(port: relay.port).hasPrefix("250 "))
        #expect(upstream.waitForMessages(1).count == 1)
        let threads = Self.threadMasks(pid: relay.pid)
        #expect(threads.count >= 8, "threads: \(threads.map(\.name))")
        let wanted = Self.bit(SIGHUP) | Self.bit(SIGINT) | Self.bit(SIGTERM)
        let open = threads.filter { $0.blocked & wanted != wanted }
        #expect(open.isEmpty, "threads that would take a signal: \(open.map { "\($0.name) SigBlk=\(String($0.blocked, radix: 16))" })")
        relay.stop()
        upstream.stop()
    }

    @Test func fiveSighupsReloadFiveTimesAndMailStillFlows() throws {
        let notify = try FakeNotifySocket()
        let upstream = try UpstreamProcess(mode: .plain)
        let relay = try RelayProcess(configBody: Self.body(upstreamPort: upstream.port), environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        #expect(notify.waitFor("READY", "1") != nil)
        for round in 1...5 {
            relay.signal(SIGHUP)
            #expect(eventually(timeout: 10) { Self.count("reloaded", in: relay.log) >= round }, "reload \(round)")
            #expect(relay.isRunning, "still running after SIGHUP \(round)")
            guard relay.isRunning else { return }
        }
        #expect(Self.count("reloading", in: relay.log) == 5)
        #expect(Self.count("reloaded orgs=", in: relay.log) == 5, "\(relay.log)")
        // systemd's reload protocol each time: RELOADING=1, then READY=1.
        #expect(eventually(timeout: 5) { notify.messages.filter { $0.fields["RELOADING"] == "1" }.count == 5 })
        #expect(eventually(timeout: 5) { notify.messages.filter { $0.fields["READY"] == "1" }.count == 6 })
        #expect(try SystemdTestSupport.submit(port: relay.port, body: "Subject: after hups\r\n\r\nhello\r\n").hasPrefix("250 "))
        let arrived = upstream.waitForMessages(1)
        #expect(arrived.count == 1 && arrived[0].content.contains("Subject: after hups"))
        relay.signal(SIGTERM)
        #expect(relay.waitForExit(timeout: 25) == 0)
        upstream.stop()
    }

    @Test func sigtermLetsTheMessageBeingSentUpstreamFinishOnceAndExitsZero() throws {
        let notify = try FakeNotifySocket()
        let upstream = try UpstreamProcess(fault: "slow-data", extra: ["--data-delay", "3"])
        let relay = try RelayProcess(configBody: Self.body(upstreamPort: upstream.port), environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        #expect(try SystemdTestSupport.submit(port: relay.port, body: "Subject: in flight\r\n\r\nhello\r\n").hasPrefix("250 "))
        // The upstream has the final dot and waits before answering: the relay is mid-transaction.
        #expect(eventually(timeout: 15) { !upstream.logLines("dots.log").isEmpty })
        relay.signal(SIGTERM)
        #expect(notify.waitFor("STOPPING", "1", timeout: 10) != nil, "STOPPING=1 on the notify socket")
        #expect(relay.waitForExit(timeout: 25) == 0, "a clean stop exits 0")
        #expect(relay.log.contains("stopping"))
        #expect(Self.count("<6>delivered ", in: relay.log) == 1, "the delivery finished before the exit: \(relay.log)")
        #expect(upstream.received().count == 1)
        #expect(try SpoolInspector(path: relay.spoolPath).messages().isEmpty, "recorded as delivered, nothing left queued")

        // The next start sends nothing again.
        try relay.start()
        #expect(eventually(timeout: 10) { relay.log.contains("spool recovered") })
        #expect(relay.log.contains("queued=0"), "\(relay.log)")
        #expect(upstream.logLines("dots.log").count == 1, "the upstream saw the message once")
        relay.stop()
        upstream.stop()
    }

    /// SIGINT (Ctrl-C in a terminal) stops the same way as SIGTERM.
    @Test func sigintStopsGracefullyWithStatusZero() throws {
        let notify = try FakeNotifySocket()
        let relay = try RelayProcess(environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        #expect(try SystemdTestSupport.submit(port: relay.port).hasPrefix("250 "))
        relay.signal(SIGINT)
        #expect(notify.waitFor("STOPPING", "1", timeout: 10) != nil)
        #expect(relay.waitForExit(timeout: 25) == 0)
        #expect(relay.log.contains("stopping: draining sessions") && relay.log.contains("stopped"))
        #expect(try SpoolInspector(path: relay.spoolPath).messages().count == 1, "the accepted message stays queued")
    }
}
