import CSystemd
import Glibc

/// The service manager's side channel (sd_notify(3)): readiness, status, watchdog, reload
/// and stop. Every call is a no-op when not started by systemd (`$NOTIFY_SOCKET` unset).
public struct SystemdNotifier: Sendable {
    public init() {}

    public var isEnabled: Bool { getenv("NOTIFY_SOCKET") != nil }

    public func send(_ state: String) {
        _ = sd_notify(0, state)
    }

    public func ready(status: String? = nil) {
        send(status.map { "READY=1\nSTATUS=\($0)" } ?? "READY=1")
    }

    public func status(_ text: String) {
        send("STATUS=\(text)")
    }

    public func stopping() {
        send("STOPPING=1")
    }

    /// RELOADING=1 must carry MONOTONIC_USEC for Type=notify-reload (systemd 253+).
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    public func watchdog() {
        send("WATCHDOG=1")
    }

    /// The watchdog interval in microseconds, when this process is the one being watched.
    public func watchdogIntervalMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 ? usec : nil
    }

    /// Listening sockets passed by socket activation (`LISTEN_FDS`), starting at fd 3.
    public func listenFDs() -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        return (0..<count).map { SD_LISTEN_FDS_START + $0 }
    }
}
