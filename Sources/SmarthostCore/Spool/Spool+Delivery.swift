import Glibc

/// The delivery side of the spool, shared by the delivery engine and the
/// `smarthost queue …` commands, which may run while the daemon does.
///
/// Every operation that changes or moves a message first takes an exclusive flock on
/// the message file and then checks that the name still points at the inode it locked,
/// so when two processes race, the second one sees the message's new place (or
/// `.notFound`), never a half-moved message. Messages move with link/rename, which
/// keep the inode, so the lock moves with them. All of this fsyncs: not for the loop.
extension Spool {
    /// The message content, exactly as received; its length and CRC are verified.
    /// Looks in `queue/`, then `failed/`.
    public func readMessage(_ id: SpoolID) throws(SpoolError) -> [UInt8] {
        let (fd, area) = try openMessage(id)
        defer { Syscall.close(fd) }
        let path = path(area, id)
        let layout = try SpoolFileFormat.layout(fd: fd, id: id, path: path)
        return try SpoolFileFormat.readContent(fd: fd, id: id, layout: layout, path: path)
    }

    /// Envelope and delivery state. Looks in `queue/`, then `failed/` (a dead letter
    /// has `failure` set).
    public func envelope(_ id: SpoolID) throws(SpoolError) -> SpoolEnvelope {
        let (fd, area) = try openMessage(id)
        defer { Syscall.close(fd) }
        return try readEnvelope(fd: fd, id: id, area: area)
    }

    /// Records a failed attempt. Rewrites only the small `.state` file.
    public func markDeferred(_ id: SpoolID, attempts: Int, nextAttemptAt: Int64, lastError: String?,
                             doneRecipients: Set<String>, refusedRecipients: [String: String] = [:]) throws(SpoolError) {
        try withLockedMessage(id, in: [.queue]) { (area, fd) throws(SpoolError) in
            var envelope = try readEnvelope(fd: fd, id: id, area: area)
            envelope.attempts = attempts
            envelope.nextAttemptAt = nextAttemptAt
            envelope.lastError = lastError
            envelope.doneRecipients = doneRecipients
            envelope.refusedRecipients = refusedRecipients
            try writeState(envelope, area: .queue)
        }
    }

    /// `queue hold` / `queue release`: only the `.state` file changes. A released message is
    /// due at once.
    public func setHeld(_ id: SpoolID, _ held: Bool) throws(SpoolError) {
        try withLockedMessage(id, in: [.queue]) { (area, fd) throws(SpoolError) in
            var envelope = try readEnvelope(fd: fd, id: id, area: area)
            envelope.held = held
            if !held { envelope.nextAttemptAt = 0 }
            try writeState(envelope, area: .queue)
        }
    }

    /// Every recipient was accepted upstream: the message leaves the spool. The
    /// message file goes first, so a crash in between leaves an orphan `.state`
    /// (swept by recovery), never a message that forgot whom it was delivered to.
    public func markDelivered(_ id: SpoolID) throws(SpoolError) {
        // No directory fsync: if a crash undoes this the message is delivered again (a
        // duplicate, never a loss), and the hot path saves one fsync per message. Should
        // a reused spare's old name come back after a crash, its header names another id
        // and recovery quarantines it.
        guard let filePool else {
            try remove(id, from: [.queue], syncDirectory: false)
            return
        }
        try withLockedMessage(id, in: [.queue]) { (area, fd) throws(SpoolError) in
            // Keeping the file is only an optimisation: when spare/ refuses it, it is removed.
            // Only small files are worth keeping: a big one's blocks cost more to free on
            // reuse than its inode saves, and spares must not hold much disk.
            let length = try Syscall.fileSize(fd, path: path(area, id))
            let spare = spareDirectory + "/" + id.rawValue
            if length <= SpoolFilePool.spareMaximumBytes, (try? Syscall.rename(path(area, id), spare)) != nil {
                if !filePool.offerSpare(.init(path: spare, length: length)) { try Syscall.unlink(spare) }
            } else {
                try Syscall.unlink(path(area, id))
            }
            try Syscall.unlink(statePath(area, id))
        }
    }

    /// Makes a dead letter, keeping `reason` in full (the step and the upstream reply).
    /// `progress` (the delivery's view of the envelope) records the last attempt: its
    /// attempts, delivered and refused recipients.
    public func moveToFailed(_ id: SpoolID, reason: String, progress: SpoolEnvelope? = nil) throws(SpoolError) {
        try withLockedMessage(id, in: [.queue]) { (area, fd) throws(SpoolError) in
            var envelope = try readEnvelope(fd: fd, id: id, area: area)
            if let progress {
                envelope.attempts = progress.attempts
                envelope.doneRecipients = progress.doneRecipients
                envelope.refusedRecipients = progress.refusedRecipients
            }
            envelope.failure = reason
            envelope.failedAt = clock()
            try move(envelope, from: .queue, to: .failed)
        }
    }

    /// Puts a dead letter back in the queue, due now. Attempts and the queue lifetime
    /// start again (`queuedAt`); recipients already accepted stay done, refused ones are
    /// tried again (an operator retries because the cause was fixed).
    public func retryFailed(_ id: SpoolID) throws(SpoolError) {
        try withLockedMessage(id, in: [.failed]) { (area, fd) throws(SpoolError) in
            var envelope = try readEnvelope(fd: fd, id: id, area: area)
            envelope.attempts = 0
            envelope.nextAttemptAt = 0
            envelope.lastError = envelope.failure
            envelope.failure = nil
            envelope.failedAt = nil
            envelope.refusedRecipients = [:]
            envelope.queuedAt = clock()
            try move(envelope, from: .failed, to: .queue)
        }
    }

    /// Removes a message (queued or dead letter) for good.
    public func delete(_ id: SpoolID) throws(SpoolError) {
        try remove(id, from: [.queue, .failed])
    }

    /// All readable messages in one area, oldest first. Files that do not validate are
    /// skipped here; `recover()` is what quarantines them.
    public func list(_ area: SpoolArea) throws(SpoolError) -> [SpoolEnvelope] {
        var envelopes: [SpoolEnvelope] = []
        for name in try Syscall.list(directory(area)) {
            guard let id = SpoolID(name),
                  let fd = try? Syscall.open(path(area, id), O_RDONLY) else { continue }
            defer { Syscall.close(fd) }
            if let envelope = try? readEnvelope(fd: fd, id: id, area: area) {
                envelopes.append(envelope)
            }
        }
        // Arrival order: ids are given to files made ahead of time (the file pool), so they
        // sort by when a file was prepared, not by when its message came.
        return envelopes.sorted { ($0.receivedAt, $0.id) < ($1.receivedAt, $1.id) }
    }

    // MARK: helpers

    /// Reads the envelope record from the message file and applies the `.state`
    /// sidecar. A state file that does not validate (it is replaced atomically, so only
    /// disk damage does that) is ignored: resending to a done recipient beats losing mail.
    func readEnvelope(fd: Int32, id: SpoolID, area: SpoolArea) throws(SpoolError) -> SpoolEnvelope {
        let layout = try SpoolFileFormat.layout(fd: fd, id: id, path: path(area, id))
        guard var envelope = SpoolEnvelope(id: id, records: layout.envelope) else {
            throw SpoolError.corrupt(id, reason: "envelope record lacks a required field")
        }
        if let bytes = try readSmallFile(statePath(area, id)),
           let records = SpoolFileFormat.decodeState(id, bytes) {
            _ = envelope.applyState(records)
        }
        return envelope
    }

    func writeState(_ envelope: SpoolEnvelope, area: SpoolArea) throws(SpoolError) {
        let bytes = SpoolFileFormat.encodeState(envelope.id, records: envelope.stateRecords)
        try Syscall.replaceFile(envelope.id.rawValue + ".state", in: directory(area), with: bytes,
                                    scratchDirectory: tmpDirectory, scratchPrefix: envelope.id.rawValue + ".state")
    }

    /// State first, then the message, then the old state: at every instant the message
    /// file is in exactly one area and the state beside it is its own.
    private func move(_ envelope: SpoolEnvelope, from: SpoolArea, to: SpoolArea) throws(SpoolError) {
        let id = envelope.id
        try writeState(envelope, area: to)
        try Syscall.moveNoReplace(path(from, id), path(to, id))
        try Syscall.unlink(statePath(from, id))
        try Syscall.syncDirectory(directory(to))
        try Syscall.syncDirectory(directory(from))
    }

    private func remove(_ id: SpoolID, from areas: [SpoolArea], syncDirectory: Bool = true) throws(SpoolError) {
        try withLockedMessage(id, in: areas) { (area, _) throws(SpoolError) in
            try Syscall.unlink(path(area, id))
            try Syscall.unlink(statePath(area, id))
            if syncDirectory { try Syscall.syncDirectory(directory(area)) }
        }
    }

    /// Opens the message read-only in the first area that has it.
    private func openMessage(_ id: SpoolID) throws(SpoolError) -> (Int32, SpoolArea) {
        for area in SpoolArea.allCases {
            do throws(SpoolError) {
                return (try Syscall.open(path(area, id), O_RDONLY), area)
            } catch {
                guard case .io(_, _, ENOENT) = error else { throw error }
            }
        }
        throw SpoolError.notFound(id)
    }

    /// Runs `body` holding an exclusive flock on the message file in the first of
    /// `areas` that has it, after checking the name still leads to the locked inode.
    func withLockedMessage<T>(_ id: SpoolID, in areas: [SpoolArea],
                              _ body: (SpoolArea, Int32) throws(SpoolError) -> T) throws(SpoolError) -> T {
        for area in areas {
            guard let fd = try lockIfPresent(path(area, id)) else { continue }
            defer { Syscall.close(fd) }  // closing drops the flock
            return try body(area, fd)
        }
        throw SpoolError.notFound(id)
    }

    /// The locked fd, or nil if the file is absent or was moved while we waited.
    private func lockIfPresent(_ path: String) throws(SpoolError) -> Int32? {
        let fd: Int32
        do throws(SpoolError) {
            fd = try Syscall.open(path, O_RDONLY)
        } catch {
            guard case .io(_, _, ENOENT) = error else { throw error }
            return nil
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR {
                let error = SpoolError.system("flock", path)
                Syscall.close(fd)
                throw error
            }
        }
        var locked = stat(), named = stat()
        if fstat(fd, &locked) == 0 && stat(path, &named) == 0
            && locked.st_ino == named.st_ino && locked.st_dev == named.st_dev {
            return fd
        }
        Syscall.close(fd)
        return nil
    }

    /// The whole of a small file, or nil if it does not exist.
    func readSmallFile(_ path: String) throws(SpoolError) -> [UInt8]? {
        let fd: Int32
        do throws(SpoolError) {
            fd = try Syscall.open(path, O_RDONLY)
        } catch {
            guard case .io(_, _, ENOENT) = error else { throw error }
            return nil
        }
        defer { Syscall.close(fd) }
        let size = try Syscall.fileSize(fd, path: path)
        return try Syscall.read(fd, count: size, at: 0, path: path)
    }
}
