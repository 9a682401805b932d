import Foundation
import Glibc
import Testing

/// Each sd_notify message the relay sends, caught on a fake `$NOTIFY_SOCKET` the way
/// systemd would see it for a `Type=notify` service.
@Suite(.serialized) struct SystemdNotifyTests {
    /// READY=1 means "listening and spool recovered": the instant it arrives, the port
    /// already answers with a banner (checked on the notify reader thread, before the test
    /// even learns of READY).
    @Test func readyArrivesOnlyOnceThePortAccepts() throws {
        let notify = try FakeNotifySocket()
        let port = SystemdTestSupport.freePort()
        let bannerAtReady = Locked<String?>(nil)
        notify.onMessage { message in
            if message.fields["READY"] == "1", bannerAtReady.value == nil {
                bannerAtReady.value = SystemdTestSupport.banner(port: port) ?? "no answer"
            }
        }
        let relay = try RelayProcess(environment: ["NOTIFY_SOCKET": notify.path], listen: ["127.0.0.1:\(port)"])
        try relay.spawn()
        let ready = try #require(notify.waitFor("READY", "1"))
        #expect(ready.index == 0, "READY=1 is the first thing systemd hears")
        #expect(bannerAtReady.value?.hasPrefix("220 ") == true, "banner when READY arrived: \(bannerAtReady.value ?? "nil")")
        #expect(ready.message.fields["STATUS"]?.hasPrefix("queue=0 deferred=0 failed=0 delivered=0") == true)
        try relay.waitUntilListening()
        let log = relay.log
        #expect(log.range(of: "spool recovered") != nil && log.range(of: "listening")!.lowerBound < log.range(of: "started")!.lowerBound)
        relay.stop()
    }

    @Test func statusFollowsTheQueueAtMostOncePerSecond() throws {
        let notify = try FakeNotifySocket()
        let relay = try RelayProcess(environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        let ready = try #require(notify.waitFor("READY", "1"))
        let initial = try #require(ready.message.fields["STATUS"])
        let reply = try SystemdTestSupport.submit(port: relay.port)
        #expect(reply.hasPrefix("250 "))
        // The default route (port 9) refuses: the message stays queued and deferred.
        let changed = try #require(notify.waitFor("STATUS", after: ready.index + 1, timeout: 10))
        let status = try #require(changed.message.fields["STATUS"])
        #expect(status != initial)
        #expect(status.hasPrefix("queue=1 "), "status: \(status)")
        #expect(status.contains("delivered=0") && status.contains("routes_down="))
        // A change right after one: its STATUS= must wait for the next second.
        #expect(try SystemdTestSupport.submit(port: relay.port).hasPrefix("250 "))
        let second = try #require(notify.waitFor("STATUS", after: changed.index + 1, timeout: 10))
        #expect(second.message.fields["STATUS"]?.hasPrefix("queue=2 ") == true, "\(second.message.text)")
        let statuses = notify.messages.filter { $0.fields["STATUS"] != nil && $0.fields["READY"] == nil }
        for (a, b) in zip(statuses, statuses.dropFirst()) {
            #expect(b.at.timeIntervalSince(a.at) > 0.8, "STATUS= at most once a second")
            #expect(a.text != b.text, "STATUS= only when it changed")
        }
        relay.stop()
    }

    /// WATCHDOG=1 every half interval from a loop timer; a loop blocked for 2 s (test hook,
    /// SIGUSR2) sends none, then the pings resume.
    @Test func watchdogPingsStopWhileTheLoopIsBlocked() throws {
        let notify = try FakeNotifySocket()
        let relay = try RelayProcess(environment: [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "300000",
            "SMARTHOST_TEST_HOOKS": "1", "SMARTHOST_TEST_STALL_MS": "2000",
        ])
        try relay.start()
        #expect(eventually(timeout: 10) { notify.messages.filter { $0.text == "WATCHDOG=1" }.count >= 8 })
        let before = notify.messages.filter { $0.text == "WATCHDOG=1" }
        #expect(before.count >= 8, "pings every 150 ms: got \(before.count)")
        for (a, b) in zip(before, before.dropFirst()) { #expect(b.at.timeIntervalSince(a.at) < 1.0, "no long gap before the stall") }

        let stalledAt = Date()
        relay.signal(SIGUSR2)
        let resumed = eventually(timeout: 15) {
            relay.log.contains("test hook: event loop resumed")
                && notify.messages.filter { $0.text == "WATCHDOG=1" && $0.at > stalledAt.addingTimeInterval(2.3) }.count >= 4
        }
        #expect(resumed, "the stall ends and pings resume")
        let pings = notify.messages.filter { $0.text == "WATCHDOG=1" }.map(\.at)
        let during = pings.filter { $0 > stalledAt.addingTimeInterval(0.3) && $0 < stalledAt.addingTimeInterval(1.8) }
        #expect(during.isEmpty, "no WATCHDOG=1 while the loop is blocked: \(during.count)")
        let longestGap = zip(pings, pings.dropFirst()).map { $1.timeIntervalSince($0) }.max() ?? 0
        #expect(longestGap > 1.8, "systemd would see a gap over WatchdogSec: \(longestGap)")
        #expect(pings.filter { $0 > stalledAt.addingTimeInterval(2.3) }.count >= 4, "pings resume after the stall")
        #expect(relay.log.contains("test hook: stalling the event loop"))
        relay.stop()
    }

    /// `WATCHDOG_PID` names the watched process: set to ours (through `sh`'s `$$` before
    /// `exec`), the relay pings; set to another pid, it is not the one watched and stays quiet.
    @Test func watchdogHonoursWatchdogPid() throws {
        for (pidExpression, expectPings) in [("$$", true), ("1", false)] {
            let notify = try FakeNotifySocket()
            let relay = try RelayProcess(environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"])
            try relay.spawn(launcher: ["/bin/sh", "-c", "export WATCHDOG_PID=\(pidExpression); exec \"$@\"", "sh"])
            try relay.waitUntilListening()
            let ready = try #require(notify.waitFor("READY", "1"))
            // STATUS= comes from a loop timer of 1 s: once it reports the message below, the
            // loop has run its timers for a second, several watchdog intervals.
            #expect(try SystemdTestSupport.submit(port: relay.port).hasPrefix("250 "))
            #expect(notify.waitFor("STATUS", after: ready.index + 1, timeout: 10) != nil)
            let pings = notify.messages.filter { $0.text == "WATCHDOG=1" }.count
            if expectPings { #expect(pings >= 4, "WATCHDOG_PID=$$: \(pings) pings") } else { #expect(pings == 0) }
            relay.stop()
        }
    }

    @Test func sighupSendsReloadingWithMonotonicTimeThenReady() throws {
        let notify = try FakeNotifySocket()
        let relay = try RelayProcess(environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        let ready = try #require(notify.waitFor("READY", "1"))
        let before = SystemdTestSupport.monotonicMicroseconds()
        relay.signal(SIGHUP)
        let reloading = try #require(notify.waitFor("RELOADING", "1", after: ready.index + 1))
        let after = SystemdTestSupport.monotonicMicroseconds()
        let stamp = try #require(reloading.message.fields["MONOTONIC_USEC"].flatMap(UInt64.init))
        #expect(stamp >= before && stamp <= after, "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload")
        let readyAgain = try #require(notify.waitFor("READY", "1", after: reloading.index + 1))
        #expect(readyAgain.message.fields["STATUS"] != nil)
        // The log writer thread may write the line just after READY=1 went out.
        #expect(eventually(timeout: 5) { relay.log.contains("reloaded") })
        relay.stop()
    }

    @Test func sigtermSendsStoppingAndExitsZero() throws {
        let notify = try FakeNotifySocket()
        let relay = try RelayProcess(environment: ["NOTIFY_SOCKET": notify.path])
        try relay.start()
        let ready = try #require(notify.waitFor("READY", "1"))
        relay.signal(SIGTERM)
        #expect(notify.waitFor("STOPPING", "1", after: ready.index + 1) != nil)
        #expect(relay.waitForExit(timeout: 10) == 0)
        #expect(!notify.messages.contains { $0.fields["READY"] != nil && $0.at > ready.message.at })
    }
}

/// A value shared with a reader thread.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
