import Glibc

/// Why a spool operation failed. Environment failures are values, never traps:
/// the SMTP session turns `reply` into the answer to DATA, the delivery engine and
/// the `smarthost queue` commands print `description`.
public enum SpoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The disk is full (ENOSPC/EDQUOT) or free space is below the configured floor.
    /// RFC 3463 4.3.1: the client keeps the message and tries again later.
    case insufficientStorage(detail: String)
    /// Any other system call failure: `operation` names the step, `path` the file.
    case io(operation: String, path: String, errno: Int32)
    /// No message with this id in the area that was asked (or it was moved meanwhile).
    case notFound(SpoolID)
    /// The file exists but fails validation (torn write, bad end marker, bad checksum).
    case corrupt(SpoolID, reason: String)
    /// A string that is not a spool id (e.g. typed by an operator).
    case invalidID(String)
    /// The spool was shut down; no further commits are taken.
    case closed
    /// A spool directory another account owns, or one others may write to: anyone who can
    /// create names in it can plant links for the relay (or a root-run queue tool) to
    /// follow. `owner`/`mode` are what it has, `user` the uid the relay runs as.
    case unsafeDirectory(path: String, owner: UInt32, mode: UInt32, user: UInt32)

    /// The reply a client sees when this error ends its transaction.
    public var reply: SMTPReply {
        switch self {
        case .insufficientStorage:
            return SMTPReply(452, "4.3.1", "Insufficient system storage")
        default:
            return SMTPReply(451, "4.3.0", "Local error in processing")
        }
    }

    public var description: String {
        switch self {
        case .insufficientStorage(let detail):
            return "insufficient storage: \(detail)"
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(SpoolError.errnoText(code))"
        case .notFound(let id):
            return "\(id): no such message"
        case .corrupt(let id, let reason):
            return "\(id): corrupt spool file: \(reason)"
        case .invalidID(let text):
            return "not a spool id: \(text)"
        case .closed:
            return "spool is shut down"
        case .unsafeDirectory(let path, let owner, let mode, let user):
            let quoted = Self.shellQuoted(path)
            return "spool directory \(path) is owned by \(Self.account(owner)) with mode \(Self.octal(mode)); "
                + "it must belong to \(Self.account(user)), the account the relay runs as, and be writable "
                + "by no one else. Fix: chown \(user) \(quoted) && chmod 0700 \(quoted)"
        }
    }

    /// Maps a failed system call to an error value. Disk-full conditions get their own
    /// case because they are the one I/O failure a client should simply retry later.
    static func system(_ operation: String, _ path: String, _ code: Int32 = errno) -> SpoolError {
        if code == ENOSPC || code == EDQUOT {
            return .insufficientStorage(detail: "\(operation) \(path): \(errnoText(code))")
        }
        return .io(operation: operation, path: path, errno: code)
    }

    /// "uid 998 (smarthost)", or just the uid when no account has it.
    static func account(_ uid: UInt32) -> String {
        var entry = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil,
              let name = entry.pw_name else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: name)))"
    }

    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// A path the operator can paste into a shell as it is.
    static func shellQuoted(_ path: String) -> String {
        let plain = path.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
                || byte == 0x2F || byte == 0x2E || byte == 0x2D || byte == 0x5F
        }
        return plain ? path : "'" + path.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}

extension SpoolError {
    public var isNotFound: Bool {
        if case .notFound = self { return true }
        return false
    }
}
