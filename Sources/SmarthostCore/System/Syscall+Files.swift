import CLinuxShim
import Glibc

/// The file-system calls (the spool's, and the queue tools'), each retrying EINTR and
/// failing with a typed `SpoolError` that names the step and the path. Everything above
/// this layer works in paths and byte arrays, never in errno. Socket calls, which turn
/// EAGAIN into a value instead, are in `Syscall.swift`.
extension Syscall {
    static let fileMode: mode_t = 0o600
    static let directoryMode: mode_t = 0o700

    /// Never follows a symlink at the last component of a file: nothing in the spool is
    /// one, and following a planted one would make a root-run queue tool write through it.
    /// Directories may be symlinks (a spool root moved to another disk).
    static func open(_ path: String, _ flags: Int32, mode: mode_t = fileMode) throws(SpoolError) -> Int32 {
        let noFollow = flags & O_DIRECTORY == 0 ? O_NOFOLLOW : 0
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC | noFollow, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SpoolError.system("open", path) }
        }
    }

    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolError) {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count > 0 {
                offset += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                throw SpoolError.system("write", path, count == 0 ? EIO : errno)
            }
        }
    }

    static func write(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SpoolError) {
        let result: SpoolError? = bytes.withUnsafeBytes { raw in
            do throws(SpoolError) { try write(fd, raw, path: path) } catch { return error }
            return nil
        }
        if let result { throw result }
    }

    static func fsync(_ fd: Int32, path: String) throws(SpoolError) {
        while Glibc.fsync(fd) != 0 {
            if errno != EINTR { throw SpoolError.system("fsync", path) }
        }
    }

    /// Makes a file's content and length durable, not its timestamps: a reused spare
    /// overwritten to the same length then costs one data write, without an inode write.
    static func fdatasync(_ fd: Int32, path: String) throws(SpoolError) {
        while Glibc.fdatasync(fd) != 0 {
            if errno != EINTR { throw SpoolError.system("fdatasync", path) }
        }
    }

    /// Makes a directory's entries durable: after a rename or unlink the new name is
    /// only on disk once the directory itself has been synced (queue_fs.c does the same).
    static func syncDirectory(_ path: String) throws(SpoolError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    static func rename(_ from: String, _ to: String) throws(SpoolError) {
        if Glibc.rename(from, to) != 0 { throw SpoolError.system("rename", from + " -> " + to) }
    }

    /// Moves a file to a name that must not exist yet (rename would silently overwrite).
    /// renameat2(RENAME_NOREPLACE) is one directory operation; file systems without it
    /// get link(2), which refuses to replace a file too, then unlink.
    static func moveNoReplace(_ from: String, _ to: String) throws(SpoolError) {
        if shim_renameat2(AT_FDCWD, from, AT_FDCWD, to, SHIM_RENAME_NOREPLACE) == 0 { return }
        guard errno == EINVAL || errno == ENOSYS else {
            throw SpoolError.system("rename", from + " -> " + to)
        }
        if Glibc.link(from, to) == 0 {
            // The link is the commit point; a tmp/ name left by a failed unlink is
            // swept by recovery and never acknowledged twice.
            _ = Glibc.unlink(from)
        } else if errno == EPERM || errno == EOPNOTSUPP {
            // File systems without hard links: the id scheme makes collisions practically
            // impossible, so check and rename.
            if access(to, F_OK) == 0 { throw SpoolError.system("rename", to, EEXIST) }
            try rename(from, to)
        } else {
            throw SpoolError.system("link", from + " -> " + to)
        }
    }

    /// An exclusive open-file-description lock on the whole file (F_OFD_SETLK: it belongs
    /// to this open file, not the process, so no other fd of ours can drop it), without
    /// waiting. False when another holds it (EAGAIN/EACCES).
    static func tryLock(_ fd: Int32, path: String) throws(SpoolError) -> Bool {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        let (_, error) = retryingEINTR { fcntl(fd, SHIM_F_OFD_SETLK, &lock) }
        if error == 0 { return true }
        if error == EAGAIN || error == EACCES { return false }
        throw SpoolError.system("lock", path, error)
    }

    /// Unlinks a file; a file that is already gone is not an error.
    static func unlink(_ path: String) throws(SpoolError) {
        if Glibc.unlink(path) != 0 && errno != ENOENT { throw SpoolError.system("unlink", path) }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func makeDirectory(_ path: String) throws(SpoolError) {
        if mkdir(path, directoryMode) != 0 && errno != EEXIST { throw SpoolError.system("mkdir", path) }
    }

    /// Refuses a spool directory that is not ours alone: owned by another account, or
    /// writable by group or others (who could plant names the relay then opens). Follows a
    /// symlink: what counts is the directory the spool's files are made in. Read and
    /// search bits for others are left to the operator: every file in the spool is 0600.
    static func checkDirectory(_ path: String, user: uid_t = geteuid()) throws(SpoolError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SpoolError.system("stat", path) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw SpoolError.system("open", path, ENOTDIR) }
        if info.st_uid != user || info.st_mode & 0o022 != 0 {
            throw SpoolError.unsafeDirectory(path: path, owner: info.st_uid, mode: info.st_mode & 0o7777, user: user)
        }
    }

    /// Bytes an unprivileged writer may still use (f_bavail: root's reserve excluded).
    static func freeBytes(_ path: String) throws(SpoolError) -> UInt64 {
        var info = statvfs()
        if statvfs(path, &info) != 0 { throw SpoolError.system("statvfs", path) }
        return UInt64(info.f_bavail) &* UInt64(info.f_frsize)
    }

    static func fileSize(_ fd: Int32, path: String) throws(SpoolError) -> Int {
        var info = stat()
        if fstat(fd, &info) != 0 { throw SpoolError.system("fstat", path) }
        return Int(info.st_size)
    }

    /// Reads `count` bytes at `offset`; a short file is reported as `nil`, not an error,
    /// because to the spool it means "torn", which the caller turns into a reason.
    static func read(_ fd: Int32, count: Int, at offset: Int, path: String) throws(SpoolError) -> [UInt8]? {
        var failure: Int32 = 0
        var short = false
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let got = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if got > 0 { done += got; continue }
                if got < 0 && errno == EINTR { continue }
                if got < 0 { failure = errno } else { short = true }
                break
            }
            initialized = done
        }
        if failure != 0 { throw SpoolError.system("read", path, failure) }
        return short ? nil : bytes
    }

    private static let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    /// Names in a directory, without "." and "..", in no particular order.
    static func list(_ path: String) throws(SpoolError) -> [String] {
        guard let dir = opendir(path) else { throw SpoolError.system("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // d_name is read in place: a dirent is only as long as its name (d_reclen), so
            // copying the 256-byte field reads past the end of glibc's buffer for the last entry.
            let namePointer = UnsafeRawPointer(entry).advanced(by: direntNameOffset)
                .assumingMemoryBound(to: CChar.self)
            let name = String(cString: namePointer)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Writes a small file so that readers see the old or the new content, never a mix:
    /// write a temporary in `scratchDirectory`, fsync it, rename it over `directory/name`,
    /// fsync the directory. Both directories are opened once and the rest is relative to
    /// them, so a directory renamed meanwhile cannot redirect the write.
    static func replaceFile(_ name: String, in directory: String, with bytes: [UInt8],
                            scratchDirectory: String, scratchPrefix: String) throws(SpoolError) {
        let scratchFD = try open(scratchDirectory, O_RDONLY | O_DIRECTORY)
        defer { close(scratchFD) }
        let targetFD = try open(directory, O_RDONLY | O_DIRECTORY)
        defer { close(targetFD) }
        let (fd, scratch) = try createExclusive(in: scratchFD, directory: scratchDirectory, prefix: scratchPrefix)
        let scratchPath = scratchDirectory + "/" + scratch
        var failure: SpoolError?
        do throws(SpoolError) {
            try write(fd, bytes, path: scratchPath)
            try fsync(fd, path: scratchPath)
        } catch {
            failure = error
        }
        close(fd)
        if failure == nil && renameat(scratchFD, scratch, targetFD, name) != 0 {
            failure = SpoolError.system("rename", scratchPath + " -> " + directory + "/" + name)
        }
        if let failure {
            _ = unlinkat(scratchFD, scratch, 0)
            throw failure
        }
        try fsync(targetFD, path: directory)
    }

    /// A new file (0600) under an unpredictable name `<prefix>.<16 hex digits>` in the
    /// directory open as `directoryFD`. O_EXCL|O_NOFOLLOW: a name someone planted (a
    /// symlink, a hard link, a file) is never opened, another random name is tried.
    static func createExclusive(in directoryFD: Int32, directory: String, prefix: String,
                                suffix: () -> UInt64 = { UInt64.random(in: .min ... .max) })
        throws(SpoolError) -> (fd: Int32, name: String) {
        var lastName = prefix
        for _ in 0..<16 {
            let digits = String(suffix(), radix: 16)
            let name = prefix + "." + String(repeating: "0", count: 16 - digits.count) + digits
            lastName = name
            while true {
                let fd = openat(directoryFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
                if fd >= 0 { return (fd, name) }
                if errno == EINTR { continue }
                if errno == EEXIST { break }
                throw SpoolError.system("open", directory + "/" + name)
            }
        }
        throw SpoolError.system("open", directory + "/" + lastName, EEXIST)
    }
}
