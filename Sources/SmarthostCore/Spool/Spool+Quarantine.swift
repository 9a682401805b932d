import Glibc

/// A file recovery moved out of `queue/` (see `Spool.recover`), with the reason it gave.
public struct QuarantinedFile: Sendable, Equatable {
    /// The name in `quarantine/`: a queue id, possibly with a `.N` suffix, or a stray name.
    public var name: String
    public var reason: String
    public var size: Int
}

extension Spool {
    /// What is in `quarantine/`, by name. Reads only; safe beside a running daemon.
    public func quarantined() throws(SpoolError) -> [QuarantinedFile] {
        let names = try Syscall.list(quarantineDirectory)
        var out: [QuarantinedFile] = []
        for name in names.sorted() where !name.hasSuffix(".reason") && !name.hasSuffix(".state") {
            let path = quarantineDirectory + "/" + name
            var info = stat()
            let size = stat(path, &info) == 0 ? Int(info.st_size) : 0
            out.append(QuarantinedFile(name: name, reason: readReason(path + ".reason"), size: size))
        }
        return out
    }

    /// The quarantined file itself, for `queue quarantine show`.
    public func readQuarantined(_ name: String) throws(SpoolError) -> [UInt8] {
        guard Self.isPlainName(name) else { throw SpoolError.invalidID(name) }
        let path = quarantineDirectory + "/" + name
        let fd: Int32
        do throws(SpoolError) { fd = try Syscall.open(path, O_RDONLY) } catch {
            if case .io(_, _, ENOENT) = error { throw SpoolError.invalidID(name) }
            throw error
        }
        defer { Syscall.close(fd) }
        let size = try Syscall.fileSize(fd, path: path)
        return try Syscall.read(fd, count: size, at: 0, path: path) ?? []
    }

    /// Puts a quarantined message back in the queue, when its content checks out now (it
    /// was quarantined by an older relay for an I/O error, or repaired by hand). A file that
    /// is still corrupt stays where it is and the error says why.
    public func releaseQuarantined(_ id: SpoolID) throws(SpoolError) -> SpoolEnvelope {
        let source = quarantineDirectory + "/" + id.rawValue
        guard Syscall.exists(source) else { throw SpoolError.notFound(id) }
        let fd = try Syscall.open(source, O_RDONLY)
        do throws(SpoolError) {
            let layout = try SpoolFileFormat.layout(fd: fd, id: id, path: source)
            try SpoolFileFormat.verifyContent(fd: fd, id: id, layout: layout, path: source)
        } catch {
            Syscall.close(fd)
            throw error
        }
        Syscall.close(fd)
        if Syscall.exists(source + ".state") {
            try Syscall.moveNoReplace(source + ".state", path(.queue, id) + ".state")
        }
        try Syscall.moveNoReplace(source, path(.queue, id))
        try Syscall.syncDirectory(queueDirectory)
        try Syscall.unlink(source + ".reason")
        try Syscall.syncDirectory(quarantineDirectory)
        return try envelope(id)
    }

    private func readReason(_ path: String) -> String {
        guard let fd = try? Syscall.open(path, O_RDONLY) else { return "(no reason recorded)" }
        defer { Syscall.close(fd) }
        let size = (try? Syscall.fileSize(fd, path: path)) ?? 0
        let bytes = (try? Syscall.read(fd, count: min(size, 4096), at: 0, path: path)) ?? nil
        let text = String(decoding: bytes ?? [], as: UTF8.self)
        return String(text.split(separator: "\n").first ?? "(no reason recorded)")
    }

    /// A name from an operator may not walk out of `quarantine/`.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/")
    }
}
