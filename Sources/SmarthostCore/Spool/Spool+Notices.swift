/// What the failure notices need of the spool beyond the message operations.
extension Spool {
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
