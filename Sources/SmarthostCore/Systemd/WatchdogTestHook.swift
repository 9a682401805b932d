import Glibc
import Logging

/// Test-only: lets an end-to-end test prove that a stuck event loop stops the watchdog
/// pings (so systemd would restart the service). Armed only when the process was started
/// with `SMARTHOST_TEST_HOOKS=1`; then SIGUSR2 blocks the loop for
/// `SMARTHOST_TEST_STALL_MS` milliseconds (default 2000), exactly like a handler that hung.
/// Without the variable SIGUSR2 is not even handled by the loop.
public enum WatchdogTestHook {
    public static var isEnabled: Bool {
        guard let value = getenv("SMARTHOST_TEST_HOOKS") else { return false }
        return String(cString: value) == "1"
    }

    /// Signals the loop should take through its signalfd.
    public static var signals: [Int32] { isEnabled ? [SIGUSR2] : [] }

    static var stallMilliseconds: Int {
        getenv("SMARTHOST_TEST_STALL_MS").flatMap { Int(String(cString: $0)) } ?? 2000
    }

    /// Blocks the calling thread (the loop) on purpose.
    public static func stall(logger: Logger) {
        let milliseconds = stallMilliseconds
        logger.warning("test hook: stalling the event loop", metadata: ["ms": "\(milliseconds)"])
        Syscall.sleep(milliseconds: Int(milliseconds))
        logger.warning("test hook: event loop resumed")
    }
}
