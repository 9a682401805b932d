import Glibc

/// One relay per spool: an exclusive lock on `<spool>/lock`, held for the life of the
/// process that owns the spool (the daemon, or a queue tool editing it directly). Two
/// relays on one spool would each run recovery — emptying the other's `tmp/` under a
/// message being received — and fight over `control.sock`.
///
/// An open-file-description lock (`F_OFD_SETLK`): it belongs to this descriptor, so no
/// other thread's `close()` of the same file drops it (as it would a POSIX record lock),
/// and the kernel releases it when the process dies, however it dies. The holder's pid is
/// written in the file so the refusal can name it.
public final class SpoolLock: Sendable {
    public let path: String
    private let fd: Int32

    /// Why the lock could not be taken.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// Another live process holds it; `pid` is what the holder wrote (nil if unreadable).
        case inUse(spool: String, pid: Int32?)
        case system(SpoolError)

        public var description: String {
            switch self {
            case .inUse(let spool, let pid):
                return "spool \(spool) is in use by " + (pid.map { "pid \($0)" } ?? "another process")
            case .system(let error):
                return error.description
            }
        }
    }

    /// Takes the lock without waiting, creating the spool directory (0700) and the lock
    /// file (0600) when missing. Touches nothing else in the spool.
    public static func acquire(spool root: String) throws(Failure) -> SpoolLock {
        let path = root + "/lock"
        let fd: Int32
        do throws(SpoolError) {
            try Syscall.makeDirectory(root)
            try Syscall.checkDirectory(root)
            fd = try Syscall.open(path, O_RDWR | O_CREAT | O_NOFOLLOW)
        } catch {
            throw .system(error)
        }
        let locked: Bool
        do throws(SpoolError) {
            locked = try Syscall.tryLock(fd, path: path)
        } catch {
            Syscall.close(fd)
            throw .system(error)
        }
        guard locked else {
            defer { Syscall.close(fd) }
            throw .inUse(spool: root, pid: holderPID(fd: fd))
        }
        do throws(SpoolError) {
            guard ftruncate(fd, 0) == 0 else { throw SpoolError.system("truncate", path) }
            try Syscall.write(fd, Array("\(getpid())\n".utf8), path: path)
        } catch {
            Syscall.close(fd)
            throw .system(error)
        }
        return SpoolLock(path: path, fd: fd)
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit {
        // The pid is left in the file: the lock, not the file, says whether it is held.
        Syscall.close(fd)
    }

    private static func holderPID(fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let digits = buffer.prefix(count).prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard !digits.isEmpty, let pid = Int32(String(decoding: digits, as: UTF8.self)) else { return nil }
        return pid
    }
}
