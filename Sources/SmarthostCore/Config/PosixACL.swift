import CLinuxShim
import Glibc

/// A file's POSIX access ACL, as Linux stores it in the `system.posix_acl_access` extended
/// attribute (`posix_acl_xattr.h`): a little-endian header `u32 version = 2`, then entries
/// of `{u16 tag, u16 perm, u32 id}`. With an ACL the mode's group bits show the mask, not
/// the owning group, so "mode 0440" says nothing about who can read: the entries do.
struct PosixACL: Equatable, Sendable {
    enum Tag: UInt16, Sendable {
        case userObject = 0x01, user = 0x02, groupObject = 0x04, group = 0x08, mask = 0x10, other = 0x20
    }

    struct Entry: Equatable, Sendable {
        var tag: Tag
        var permissions: UInt16
        /// The uid or gid of a named `user`/`group` entry; meaningless for the others.
        var id: UInt32
    }

    /// Someone besides the file's owner and the relay itself who may read the file.
    enum Reader: Equatable, Sendable {
        case user(UInt32)
        case group(UInt32)
    }

    static let read: UInt16 = 4

    var entries: [Entry]

    /// nil when the bytes are not a version-2 ACL (a caller then falls back to the mode).
    init?(xattr bytes: [UInt8]) {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0, Self.u32(bytes, 0) == 2 else { return nil }
        var entries: [Entry] = []
        var offset = 4
        while offset < bytes.count {
            guard let tag = Tag(rawValue: Self.u16(bytes, offset)) else { return nil }
            entries.append(Entry(tag: tag, permissions: Self.u16(bytes, offset + 2), id: Self.u32(bytes, offset + 4)))
            offset += 8
        }
        self.entries = entries
    }

    init(entries: [Entry]) {
        self.entries = entries
    }

    /// The first named user or group (or the owning group) the ACL lets read, that is not
    /// `owner` (the file's), `user` (the relay's uid) or `group` (the relay's gid). Named
    /// entries and the owning group are limited by the mask (acl(5), "access check").
    func unwantedReader(owner: UInt32, user: UInt32, group: UInt32, owningGroup: UInt32) -> Reader? {
        let mask = entries.first { $0.tag == .mask }?.permissions ?? 0o7
        for entry in entries where entry.permissions & mask & Self.read != 0 {
            switch entry.tag {
            case .user where entry.id != owner && entry.id != user:
                return .user(entry.id)
            case .group where entry.id != group:
                return .group(entry.id)
            case .groupObject where owningGroup != group:
                return .group(owningGroup)
            default:
                continue
            }
        }
        return nil
    }

    /// The access ACL of the open file; nil when it has none, or the file system keeps none.
    static func read(fd: Int32) -> PosixACL? {
        var buffer = [UInt8](repeating: 0, count: 4 + 8 * 64)
        let count = buffer.withUnsafeMutableBytes { fgetxattr(fd, "system.posix_acl_access", $0.baseAddress, $0.count) }
        // ENODATA: no ACL; ENOTSUP: none possible here; ERANGE: more than 64 entries,
        // which no credential has: refused as unreadable by the caller's mode check.
        guard count > 0 else { return nil }
        return PosixACL(xattr: Array(buffer.prefix(count)))
    }

    /// `user:www-data`, `group:adm` (or the number when no account has it), as getfacl
    /// and setfacl spell an entry.
    static func name(_ reader: Reader) -> String {
        switch reader {
        case .user(let uid):
            var entry = passwd(), result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: 4096)
            if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name {
                return "user:" + String(cString: name)
            }
            return "user:\(uid)"
        case .group(let gid):
            var entry = Glibc.group(), result: UnsafeMutablePointer<Glibc.group>?
            var buffer = [CChar](repeating: 0, count: 4096)
            if getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name {
                return "group:" + String(cString: name)
            }
            return "group:\(gid)"
        }
    }

    private static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    private static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(u16(bytes, at)) | UInt32(u16(bytes, at + 2)) << 16
    }
}
