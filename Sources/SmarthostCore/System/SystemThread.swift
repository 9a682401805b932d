import CLinuxShim
import Glibc

/// The one way this process starts an OS thread (the loop's workers, the spool's committer,
/// sync pool and file pool, the log writer): named, so `ps -L`, `top -H` and a core dump say
/// which thread is which, and with `pthread_create`'s result checked, so a thread that could
/// not start is a value the owner decides about instead of a job queue nobody drains.
struct SystemThread: @unchecked Sendable {
    let handle: pthread_t
    let name: String

    /// Starts `body` on a new thread named `name` (the kernel keeps 15 bytes of it). Throws
    /// when the system refuses (EAGAIN: thread or memory limits).
    static func start(name: String, _ body: @escaping () -> Void) throws(SystemError) -> SystemThread {
        let start = Start(name: name, body: body)
        let context = Unmanaged.passRetained(start).toOpaque()
        var handle = pthread_t()
        // The new thread blocks the relay's signals from its first instruction (see
        // `ProcessSignals`): no thread can take a SIGHUP or SIGTERM meant for the loop's
        // signalfd, whoever creates it and whenever.
        // The creator's mask plus these for the new thread; the creator's own comes back after.
        var mask = Syscall.signalSet(ProcessSignals.threadMask)
        var saved = sigset_t()
        var status = pthread_sigmask(SIG_BLOCK, &mask, &saved)
        if status == 0 {
            status = pthread_create(&handle, nil, entry, context)
            pthread_sigmask(SIG_SETMASK, &saved, nil)
        }
        guard status == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            throw SystemError("pthread_create \(name)", errno: status)
        }
        // Named from here, before `start` returns: whoever lists the threads next sees it.
        _ = shim_pthread_setname_np(handle, kernelName(name))
        return SystemThread(handle: handle, name: name)
    }

    private static let entry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { context in
        let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
        // The thread names itself before its body runs: the creator's naming below may
        // come after the body has started (a body that looks at its name saw the name of
        // the thread that created it).
        _ = shim_pthread_setname_np(pthread_self(), kernelName(start.name))
        start.body()
        return nil
    }

    /// The kernel keeps 15 bytes of a thread's name and refuses a longer one (ERANGE): cut
    /// at a character boundary, so a name never ends in half a UTF-8 sequence.
    static func kernelName(_ name: String) -> String {
        var kept = ""
        var bytes = 0
        for character in name {
            bytes += character.utf8.count
            if bytes > 15 { break }
            kept.append(character)
        }
        return kept
    }

    /// Waits for the thread to end. Once only, and never from the thread itself.
    func join() {
        pthread_join(handle, nil)
    }

    /// Lets the thread end on its own; its resources go when it does.
    func detach() {
        pthread_detach(handle)
    }

    /// True on the thread itself (which must detach, not join, if it is the one stopping).
    var isCurrent: Bool {
        pthread_equal(handle, pthread_self()) != 0
    }

    private final class Start {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }
}
