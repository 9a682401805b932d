import Glibc

/// What the pickup does with one name in the maildrop, decided from what `lstat`/`fstat`
/// say before anything is read. Pure, so every refusal has a test without a file system.
enum MaildropVerdict: Equatable, Sendable {
    /// Read it and take the message in.
    case read
    /// Leave it: a `.tmp` being written, or a name that vanished.
    case skip
    /// Refused; the name is unlinked (it is a link, a special file, or too big to keep).
    case remove(String)
    /// Refused; the file is moved to `quarantine/` with the reason beside it.
    case quarantine(String)

    enum Kind: Equatable, Sendable {
        case regular, directory, symlink, other
    }

    struct Facts: Equatable, Sendable {
        var kind: Kind
        var links: Int
        var size: Int
        var ageSeconds: Int64
    }

    static func judge(name: String, _ facts: Facts, maxFileSize: Int) -> MaildropVerdict {
        switch facts.kind {
        case .symlink: return .remove("a symbolic link (never followed)")
        case .directory: return .skip   // nothing sendmail makes; left for a human
        case .other: return .remove("not a regular file (FIFO, socket or device)")
        case .regular: break
        }
        if Maildrop.isTemporaryName(name) && facts.ageSeconds < Maildrop.staleTemporarySeconds { return .skip }
        // A second name for the file: someone else's file linked in, whose owner is not
        // the one who dropped it here.
        if facts.links != 1 { return .remove("a hard link (\(facts.links) names)") }
        if facts.size > maxFileSize { return .remove("oversized (\(facts.size) bytes, at most \(maxFileSize))") }
        return .read
    }
}

/// The relay's reading of one maildrop file: opened without following links or blocking
/// (O_NOFOLLOW|O_NONBLOCK), checked again on the open descriptor, read up to its bound,
/// decoded and checked, and the submitting uid taken from the file's owner.
struct MaildropIntake {
    enum Outcome: Equatable {
        /// A whole drop file; `uid` is the owner's uid, nil when this process's user
        /// namespace cannot tell who that is (`PeerUIDMap`), which no uid rule matches.
        case message(MaildropMessage, uid: UInt32?)
        case skip
        case remove(String)
        case quarantine(String)
    }

    let directory: String
    let maxFileSize: Int
    let nowSeconds: Int64
    var uidMap = PeerUIDMap.current

    func take(_ name: String) -> Outcome {
        let path = directory + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0 else { return .skip }
        if let refused = Self.refusal(verdict(name, info)) { return refused }
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            switch errno {
            case ELOOP: return .remove("a symbolic link (never followed)")
            case EACCES: return .quarantine("unreadable to the relay (its owner changed its mode)")
            default: return .skip   // vanished, or out of descriptors: the next scan
            }
        }
        defer { Syscall.close(fd) }
        // The name may have been swapped since lstat: what counts is the file now open.
        guard fstat(fd, &info) == 0 else { return .skip }
        if let refused = Self.refusal(verdict(name, info)) { return refused }
        return decode(fd: fd, path: path, owner: info.st_uid, stale: Maildrop.isTemporaryName(name))
    }

    /// What a verdict other than `.read` does with the file; nil: read it.
    private static func refusal(_ verdict: MaildropVerdict) -> Outcome? {
        switch verdict {
        case .read: return nil
        case .skip: return .skip
        case .remove(let reason): return .remove(reason)
        case .quarantine(let reason): return .quarantine(reason)
        }
    }

    private func verdict(_ name: String, _ info: stat) -> MaildropVerdict {
        let kind: MaildropVerdict.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        let facts = MaildropVerdict.Facts(kind: kind, links: Int(info.st_nlink), size: Int(info.st_size),
                                          ageSeconds: nowSeconds - Int64(info.st_mtim.tv_sec))
        return MaildropVerdict.judge(name: name, facts, maxFileSize: maxFileSize)
    }

    /// Reads at most one byte past the bound, so a file that grows after fstat is still
    /// refused rather than read without end.
    private func decode(fd: Int32, path: String, owner: uid_t, stale: Bool) -> Outcome {
        guard let bytes = readBounded(fd) else { return .skip }
        guard bytes.count <= maxFileSize else { return .remove("oversized (grew past \(maxFileSize) bytes)") }
        let message: MaildropMessage
        do throws(MaildropFormat.Defect) {
            message = try MaildropFormat.decode(bytes)
        } catch {
            // A stale `.tmp` that is not whole is a sendmail that died mid-write: nothing
            // was promised for it (that sendmail exited non-zero).
            return stale ? .remove("stale and incomplete: \(error)") : .quarantine("\(error)")
        }
        let uid = uidMap.believe(UInt32(owner))
        if let uid, uid != message.uid {
            return .quarantine("owned by uid \(uid) but names uid \(message.uid)")
        }
        return .message(message, uid: uid)
    }

    private func readBounded(_ fd: Int32) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while out.count <= maxFileSize {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        return out
    }
}

extension Spool {
    /// `<spool>/maildrop`.
    var maildropDirectory: String { Maildrop.directory(spool: root) }

    /// Moves a refused drop file to `quarantine/maildrop-<name>` with a `.reason` beside
    /// it (`smarthost queue quarantine list` shows both). The rename needs no read access:
    /// a file its owner made unreadable is kept all the same.
    func quarantineDrop(_ name: String, reason: String) throws(SpoolError) -> String {
        let plain = name.hasPrefix(".") ? String(name.dropFirst()) : name
        let safe = plain.utf8.count <= 64 && plain.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2E }
        let base = "maildrop-" + (safe ? plain : Maildrop.randomName())
        var target = base
        var suffix = 1
        while Syscall.exists(quarantineDirectory + "/" + target) || Syscall.exists(quarantineDirectory + "/" + target + ".reason") {
            target = base + "." + String(suffix)
            suffix += 1
        }
        let text = Array("\(reason)\nquarantined at \(clock())\n".utf8)
        try Syscall.replaceFile(target + ".reason", in: quarantineDirectory, with: text,
                                scratchDirectory: tmpDirectory, scratchPrefix: "quarantine")
        try Syscall.rename(maildropDirectory + "/" + name, quarantineDirectory + "/" + target)
        try Syscall.syncDirectory(quarantineDirectory)
        return target
    }
}
