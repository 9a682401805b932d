import Glibc

/// Where log events go. systemd sets `$JOURNAL_STREAM` to `<device>:<inode>` of the stream
/// it connected to stdout/stderr; when that is still our fd 2 (not redirected by a wrapper
/// or a shell), the journal is listening and takes structured fields
/// (systemd.exec(5), "$JOURNAL_STREAM"). Otherwise: one line per event on stderr.
public enum LogDestination: Equatable, Sendable {
    case journald
    case lines

    /// The device and inode of an open file descriptor.
    public struct FileIdentity: Equatable, Sendable {
        public var device: UInt64
        public var inode: UInt64

        public init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }
    }

    /// Pure decision, tested without a journal.
    public static func select(journalStream: String?, standardError: FileIdentity?) -> LogDestination {
        guard let journalStream, let standardError, let parsed = parse(journalStream) else { return .lines }
        return parsed == standardError ? .journald : .lines
    }

    /// `$JOURNAL_STREAM` is `st_dev:st_ino` in decimal.
    static func parse(_ text: String) -> FileIdentity? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        return FileIdentity(device: device, inode: inode)
    }

    public static func identity(of fd: Int32) -> FileIdentity? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The destination for this process, from its environment and its fd 2.
    public static func current() -> LogDestination {
        let stream = getenv("JOURNAL_STREAM").map { String(cString: $0) }
        return select(journalStream: stream, standardError: identity(of: 2))
    }
}
