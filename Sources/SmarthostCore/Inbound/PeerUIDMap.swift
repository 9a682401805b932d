#if canImport(Glibc)
import Glibc
#endif

/// Which peer uids (`SO_PEERCRED`) can be believed in this process's user namespace. The
/// kernel reports a peer's uid as the reader's namespace sees it, and a uid that namespace
/// does not map as the overflow uid (65534). Under systemd's `PrivateUsers=yes` only root
/// and the service's own user are mapped, so every other local user — tenant A's robot,
/// tenant B's robot, `nobody` — arrives as 65534, the same as each other. A uid rule must
/// never match such a stand-in: while the namespace leaves any uid unmapped, 65534 counts as
/// unknown (which no rule matches), and the relay says once why its uid rules see nobody.
public struct PeerUIDMap: Sendable, Equatable {
    /// `inside outside count` lines of `/proc/self/uid_map`, as (first inside uid, count).
    public let ranges: [ClosedRange<UInt64>]
    public let overflowUID: UInt32

    /// Parses `/proc/self/uid_map` text; nil text (unreadable) maps nothing for sure.
    public init(uidMap text: String?, overflowUID: UInt32 = 65534) {
        var ranges: [ClosedRange<UInt64>] = []
        for line in (text ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, let inside = UInt64(fields[0]), let count = UInt64(fields[2]), count > 0 else { continue }
            ranges.append(inside...(inside + count - 1))
        }
        self.ranges = ranges
        self.overflowUID = overflowUID
    }

    /// Every uid but (uid_t)-1 is mapped: the initial namespace, or `PrivateUsers=no`.
    public var mapsEveryUID: Bool {
        let every: UInt64 = 4_294_967_294
        var covered: UInt64 = 0
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if range.lowerBound > covered { return false }
            covered = max(covered, range.upperBound + 1)
            if covered > every { return true }
        }
        return false
    }

    /// The uid the kernel reported, or nil when it may stand for any unmapped user.
    public func believe(_ uid: UInt32) -> UInt32? {
        uid == overflowUID && !mapsEveryUID ? nil : uid
    }

    /// This process's map; it never changes while the process runs. `/proc/sys` may be
    /// hidden (`ProcSubset=pid`): then the kernel's default overflow uid, 65534.
    public static let current = PeerUIDMap(
        uidMap: readSmallFile("/proc/self/uid_map"),
        overflowUID: readSmallFile("/proc/sys/kernel/overflowuid").flatMap {
            UInt32($0.filter { $0 >= "0" && $0 <= "9" })
        } ?? 65534)

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
