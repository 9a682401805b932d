import Glibc

/// The maildrop, `<spool>/maildrop`: where `sendmail` leaves a message the relay cannot take
/// right now (stopped, restarting, a configuration that does not load, `4xx`), and where the
/// relay's pickup takes it in (`MaildropPickup`) — Postfix's maildrop + postdrop, without
/// the setgid helper.
///
/// The directory is `smarthost:smarthost 3733` (setgid, sticky, `-wx` for others):
/// - any local user may create a file in it, and none may list it (no `r`), so the 128-bit
///   random names of other users' files cannot be learnt;
/// - the sticky bit keeps a user from renaming or removing another user's file;
/// - setgid gives every file the group `smarthost`, so a file of mode 0640 is readable by
///   its owner and the relay and by nobody else;
/// - the file's owner is the submitting uid: the kernel sets it, a user cannot give a file
///   away (chown is root's), so it is as good as `SO_PEERCRED`.
///
/// `sendmail` writes `.<name>.tmp` (O_EXCL|O_NOFOLLOW, 0640), fsyncs it and renames it to
/// `<name>`; the pickup reads only final names, and removes `.tmp` files left for an hour.
public enum Maildrop {
    public static func directory(spool: String) -> String { spool + "/maildrop" }

    /// Where the packaged units keep the spool (`deploy/smarthost.yaml.example`).
    public static let packagedSpool = "/var/lib/smarthost/spool"

    /// The maildrop `sendmail` writes to: the configuration's `spool:` when the caller may
    /// read the file; else the packaged spool's or the built-in default's, whichever has
    /// one — the installed configuration is `root:smarthost 0640`, so PHP as `www-data` and
    /// a user's cron job cannot read it, and must still find the maildrop.
    public static func locate(configuredSpool: String?, isDirectory: (String) -> Bool = Maildrop.isDirectory) -> String {
        if let configuredSpool { return directory(spool: configuredSpool) }
        let candidates = [packagedSpool, RelayConfig.defaultSpool].map(directory(spool:))
        return candidates.first(where: isDirectory) ?? candidates[0]
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    public static let directoryMode: mode_t = 0o3733
    static let fileMode: mode_t = 0o640
    /// A `sendmail` writes its file in one go, after reading all of its input: a `.tmp`
    /// an hour old belongs to one that died (or whose rename a crash lost).
    static let staleTemporarySeconds: Int64 = 3600

    /// 128 random bits (the system generator: getrandom(2)) as 32 hex digits.
    static func randomName() -> String {
        let words = [UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max)]
        return words.map { word in
            let digits = String(word, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }

    static func isTemporaryName(_ name: String) -> Bool {
        name.hasPrefix(".") && name.hasSuffix(".tmp")
    }

    /// `sendmail`'s side: writes `message` into `directory` and returns its name once the
    /// file is on disk (fsynced) under its final name.
    public static func drop(_ message: MaildropMessage, directory: String) throws(SpoolError) -> String {
        let bytes = MaildropFormat.encode(message)
        for _ in 0..<8 {
            let name = randomName()
            let temporary = directory + "/." + name + ".tmp"
            let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
            if fd < 0 {
                if errno == EEXIST || errno == EINTR { continue }
                throw SpoolError.system("open", temporary)
            }
            do throws(SpoolError) {
                // The caller's umask (cron's 022, a user's 077) must not decide whether the
                // relay may read the file: 0640, group smarthost from the setgid directory.
                if fchmod(fd, fileMode) != 0 { throw SpoolError.system("fchmod", temporary) }
                try Syscall.write(fd, bytes, path: temporary)
                try Syscall.fsync(fd, path: temporary)
                Syscall.close(fd)
                try Syscall.moveNoReplace(temporary, directory + "/" + name)
            } catch {
                Syscall.close(fd)
                _ = unlink(temporary)
                throw error
            }
            // Only the directory's owner may open it to fsync it (others have no `r`). A
            // rename a crash loses leaves a whole `.tmp`, which the pickup takes in once stale.
            try? Syscall.syncDirectory(directory)
            return name
        }
        throw SpoolError.system("open", directory, EEXIST)
    }

    /// The relay's side, at start: makes the directory if it is missing and says what is
    /// wrong with it (one line each). Under systemd the service may not set the setgid bit
    /// (`RestrictSUIDSGID=yes`): tmpfiles.d makes the directory at install and boot.
    static func prepare(spool: String) -> [String] {
        let path = directory(spool: spool)
        var problems: [String] = []
        if mkdir(path, directoryMode) == 0 {
            if chmod(path, directoryMode) != 0 {
                problems.append("cannot set mode 3733 on \(path): \(String(cString: strerror(errno))); "
                    + "run systemd-tmpfiles --create smarthost.conf")
            }
        } else if errno != EEXIST {
            return ["cannot make the maildrop \(path): \(String(cString: strerror(errno)))"]
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            return ["the maildrop \(path) is not a directory"]
        }
        if info.st_uid != geteuid() {
            problems.append("the maildrop \(path) is owned by uid \(info.st_uid), not the relay's \(geteuid())")
        }
        let mode = info.st_mode & 0o7777
        if mode != directoryMode {
            problems.append("the maildrop \(path) has mode \(String(mode, radix: 8)), want 3733 "
                + "(sticky: users cannot remove each other's files; no o+r: nobody lists them; "
                + "setgid: the relay can read them): chmod 3733 \(path)")
        }
        var root = stat()
        if stat(spool, &root) == 0, root.st_mode & 0o001 == 0 {
            problems.append("other users cannot reach the maildrop: \(spool) needs o+x (chmod o+x \(spool))")
        }
        return problems
    }
}
