import CLinuxShim
import Glibc

/// The signals the relay takes on its event loop through a signalfd (SIGHUP reloads,
/// SIGTERM and SIGINT stop gracefully, SIGUSR2 under the watchdog test hook). A signal
/// sent to the process goes to any thread that does not block it, and its default action
/// ends the whole process: one thread that forgot the mask turned `kill -HUP` into exit 129
/// and SIGTERM into exit 143 with no drain (issue 19). So the mask is set twice over:
/// `blockInThisThread()` first thing in `serve`, before any thread exists, and
/// `SystemThread` starts every thread with these blocked whatever its creator's mask.
public enum ProcessSignals {
    /// HUP, INT, TERM, plus SIGUSR2 only when `SMARTHOST_TEST_HOOKS=1`.
    public static var relayed: [Int32] { [SIGTERM, SIGINT, SIGHUP] + WatchdogTestHook.signals }

    /// The ones no thread may ever take, hooks or not (SIGUSR2 is harmless to block).
    static var threadMask: [Int32] { [SIGTERM, SIGINT, SIGHUP, SIGUSR2] }

    /// Blocks `relayed` in the calling thread; threads started from it later inherit the mask.
    /// Call before the first thread of the process starts (the log writer is the first).
    public static func blockInThisThread() {
        var set = Syscall.signalSet(relayed)
        precondition(pthread_sigmask(SIG_BLOCK, &set, nil) == 0, "pthread_sigmask failed")
    }

    /// True when every one of `signals` is blocked in the calling thread.
    public static func blockedInThisThread(_ signals: [Int32]) -> Bool {
        var current = sigset_t()
        guard pthread_sigmask(SIG_SETMASK, nil, &current) == 0 else { return false }
        return signals.allSatisfy { sigismember(&current, $0) == 1 }
    }
}
