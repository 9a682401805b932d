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
