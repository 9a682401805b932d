import Glibc

/// What the failure notices need of the spool beyond the message operations.
extension Spool {
    /// How much free space a notice leaves at the least, at most the configured floor.
    ///
    /// `min_free_space` refuses inbound mail, but the notice of a dead letter must still be
    /// written: it is what tells the sender that its accepted message will not arrive. So a
    /// notice may use the room below the floor, down to this reserve, which is kept for
    /// what must never fail (`.state` rewrites, moves, the log). Learnt from Postfix:
    /// `queue_minfree` stops only smtpd and pickup (new mail), while the `bounce` service
    /// writes its notices through cleanup into the queue regardless, and qmgr removes a
    /// dead message only once its bounce was written, else the message stays deferred. We
    /// do both: notices dig into the floor (bounded to ~130 KiB each by `NoticeOriginal`),
    /// and when even that fails the dead letter stays in `queue/` (see
    /// `DeliveryOutcomeRecorder`), so a restart tries it and its notice again.
    public static let noticeReserveBytes: UInt64 = 1 << 20

    /// The floor notices obey: the reserve, or the configured floor when that is lower
    /// (0 turns both off: notices are then written until the disk is full).
    public var noticeFloorBytes: UInt64 { min(minimumFreeBytes, Self.noticeReserveBytes) }

    /// Starts a notice: like `begin` for inbound mail, but under the notice floor instead of
    /// `min_free_space`. Always a new `tmp/<id>` (the file pool is the inbound path's).
    func beginNotice(expectedSize: Int) throws(SpoolError) -> IncomingMessage {
        let free = try Syscall.freeBytes(tmpDirectory)
        let needed = noticeFloorBytes.addingReportingOverflow(UInt64(max(0, expectedSize)))
        if needed.overflow || free < needed.partialValue {
            throw SpoolError.insufficientStorage(
                detail: "\(free) bytes free in \(root), a notice of \(expectedSize) bytes needs a reserve of \(noticeFloorBytes)")
        }
        guard let file = Self.createTemporaryFile(in: tmpDirectory, ids: ids, reusing: nil) else {
            throw SpoolError.system("create notice in", tmpDirectory)
        }
        return IncomingMessage(id: file.id, path: file.path, fd: file.fd)
    }

    /// Records that the sender got its delay warning, so a restart does not warn again.
    /// Only the `.state` file changes; later `markDeferred` calls keep the mark.
    public func markDelayWarned(_ id: SpoolID) throws(SpoolError) {
        try withLockedMessage(id, in: [.queue]) { (area, fd) throws(SpoolError) in
            var envelope = try readEnvelope(fd: fd, id: id, area: area)
            envelope.delayWarned = true
            try writeState(envelope, area: .queue)
        }
    }
}
