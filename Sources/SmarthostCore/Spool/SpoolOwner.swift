import Glibc

/// The queue tools act as the spool's owner: a root-run `queue retry` on a stopped relay must
/// not leave root-owned `.state` files that the service account can then not read (its next
/// start would find them unreadable). Like `postsuper`, which runs as the mail owner.
public enum SpoolOwner {
    public enum Failure: Error, CustomStringConvertible {
        case noSpool(String, reason: String)
        case cannotSwitch(uid: uid_t, gid: gid_t, reason: String)

        public var description: String {
            switch self {
            case .noSpool(let root, let reason): return "no spool at \(root): \(reason)"
            case .cannotSwitch(let uid, let gid, let reason):
                return "cannot switch to the spool owner (uid \(uid), gid \(gid)): \(reason)"
            }
        }
    }

    /// When run as root and the spool belongs to another account, drops every group and
    /// becomes that account for the rest of the process. Run as anyone else it changes
    /// nothing: the kernel's permissions then decide what the caller may do.
    /// Returns the uid now in effect.
    @discardableResult
    public static func become(ownerOf root: String) throws(Failure) -> uid_t {
        var info = stat()
        guard stat(root, &info) == 0 else { throw .noSpool(root, reason: String(cString: strerror(errno))) }
        guard getuid() == 0 || geteuid() == 0, info.st_uid != 0 else { return geteuid() }
        let uid = info.st_uid, gid = info.st_gid
        // Groups first, then the gid, then the uid: after setuid nothing else may change.
        guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw .cannotSwitch(uid: uid, gid: gid, reason: String(cString: strerror(errno)))
        }
        // Regaining root must be impossible from here on.
        guard setuid(0) != 0 else {
            throw .cannotSwitch(uid: uid, gid: gid, reason: "root could be regained")
        }
        return uid
    }
}
