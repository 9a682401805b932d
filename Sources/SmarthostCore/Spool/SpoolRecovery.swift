import Glibc

/// What start-up recovery found and did.
public struct SpoolRecovery: Sendable {
    /// A file moved out of `queue/` because it cannot be delivered as it is.
    public struct Quarantined: Sendable, Equatable {
        /// The file name as it was in `queue/` (an id, or whatever else was there).
        public var name: String
        public var reason: String
    }

    /// Valid queued messages with their delivery state, oldest first.
    public var queued: [SpoolEnvelope] = []
    public var quarantined: [Quarantined] = []
    /// Messages left in `queue/` because reading them failed for a reason that is not their
    /// content (permission, I/O): they are not corrupt, and are validated again later.
    public var unreadable: [Quarantined] = []
    /// Files in `tmp/` that were never acknowledged and so were removed.
    public var removedTemporaryFiles = 0
    /// `.state` files whose message had already left (delivered, moved, deleted).
    public var removedOrphanStates = 0
}

extension Spool {
    /// Run once by the daemon before it listens, with no other process using the spool.
    ///
    /// 1. `tmp/` and `spare/` are emptied: nothing in either was ever answered with 250
    ///    (`spare/` holds delivered messages' files, some half overwritten by a message
    ///    being received into them).
    /// 2. Every `queue/` message is validated in full (header, end marker, lengths,
    ///    envelope and content CRC). A torn or unreadable file moves to `quarantine/`
    ///    with a `<name>.reason` file, so it is kept for a human but never delivered half.
    /// 3. `.state` files without their message (a crash mid-delete or mid-move) go.
    public func recover() throws(SpoolError) -> SpoolRecovery {
        var recovery = SpoolRecovery()
        for name in try Syscall.list(tmpDirectory) {
            try Syscall.unlink(tmpDirectory + "/" + name)
            recovery.removedTemporaryFiles += 1
        }
        // Spares are delivered messages kept only for their inodes, or messages being
        // received into them: a commit renames its file out of spare/ before any 250.
        for name in try Syscall.list(spareDirectory) {
            try Syscall.unlink(spareDirectory + "/" + name)
        }
        let names = Set(try Syscall.list(queueDirectory))
        for name in names.sorted() where !isStateName(name) {
            do throws(SpoolError) {
                recovery.queued.append(try validate(name))
            } catch {
                let reason = failureReason(error)
                if Self.isContentFault(error) {
                    try quarantine(name, reason: reason)
                    recovery.quarantined.append(.init(name: name, reason: reason))
                } else {
                    recovery.unreadable.append(.init(name: name, reason: reason))
                }
            }
        }
        recovery.removedOrphanStates = try removeOrphanStates(.queue) + removeOrphanStates(.failed)
        try Syscall.syncDirectory(tmpDirectory)
        try Syscall.syncDirectory(queueDirectory)
        return recovery
    }

    /// Validates a message that recovery could not read, once whatever stopped it (a
    /// root-owned file, an I/O error) may be gone. Throws what still stops it.
    public func revalidate(_ name: String) throws(SpoolError) -> SpoolEnvelope {
        try validate(name)
    }

    /// Only what is wrong with the bytes themselves sends a file to quarantine; a
    /// permission or I/O error says nothing about the message, which stays queued.
    static func isContentFault(_ error: SpoolError) -> Bool {
        switch error {
        case .corrupt, .invalidID: return true
        default: return false
        }
    }

    /// A `.state` file is handled with its message; an orphan one is handled later.
    private func isStateName(_ name: String) -> Bool {
        name.hasSuffix(".state") && SpoolID(String(name.dropLast(6))) != nil
    }

    private func validate(_ name: String) throws(SpoolError) -> SpoolEnvelope {
        guard let id = SpoolID(name) else { throw SpoolError.invalidID(name) }
        let path = path(.queue, id)
        let fd = try Syscall.open(path, O_RDONLY)
        defer { Syscall.close(fd) }
        let layout = try SpoolFileFormat.layout(fd: fd, id: id, path: path)
        try SpoolFileFormat.verifyContent(fd: fd, id: id, layout: layout, path: path)
        return try readEnvelope(fd: fd, id: id, area: .queue)
    }

    private func failureReason(_ error: SpoolError) -> String {
        switch error {
        case .corrupt(_, let reason): return reason
        case .invalidID: return "unexpected file name in queue/"
        default: return error.description
        }
    }

    /// Moves `queue/<name>` (and its state) to `quarantine/`, never over an earlier
    /// quarantined file, and writes the reason beside it.
    private func quarantine(_ name: String, reason: String) throws(SpoolError) {
        var targetName = name
        var suffix = 1
        while Syscall.exists(quarantineDirectory + "/" + targetName)
                || Syscall.exists(quarantineDirectory + "/" + targetName + ".reason") {
            targetName = name + "." + String(suffix)
            suffix += 1
        }
        let target = quarantineDirectory + "/" + targetName
        let text = Array("\(reason)\nquarantined at \(clock())\n".utf8)
        try Syscall.replaceFile(targetName + ".reason", in: quarantineDirectory, with: text,
                                    scratchDirectory: tmpDirectory, scratchPrefix: "quarantine")
        try Syscall.rename(queueDirectory + "/" + name, target)
        if Syscall.exists(queueDirectory + "/" + name + ".state") {
            try Syscall.rename(queueDirectory + "/" + name + ".state", target + ".state")
        }
        try Syscall.syncDirectory(quarantineDirectory)
    }

    private func removeOrphanStates(_ area: SpoolArea) throws(SpoolError) -> Int {
        let names = Set(try Syscall.list(directory(area)))
        var removed = 0
        for name in names where name.hasSuffix(".state") && !names.contains(String(name.dropLast(6))) {
            try Syscall.unlink(directory(area) + "/" + name)
            removed += 1
        }
        if removed > 0 { try Syscall.syncDirectory(directory(area)) }
        return removed
    }
}
