@testable import SmarthostCore

/// The queue's events with one clock: most tests and the simulation keep the monotonic and
/// the wall clock equal (`DeliveryInstant.both`), so a time is one number.
/// `DeliveryQueueClockTests` is where the two clocks part.
extension DeliveryQueue {
    mutating func enqueue(_ envelope: SpoolEnvelope, content: [UInt8]? = nil) {
        enqueue(envelope, content: content, now: .both(0))
    }

    mutating func tick(now: Int64) -> [DeliveryAction] {
        tick(now: .both(now))
    }

    mutating func nextWake(now: Int64) -> Int64? {
        nextWake(now: .both(now))
    }

    mutating func connectionReady(_ cid: ConnectionID, now: Int64) -> [DeliveryAction] {
        connectionReady(cid, now: .both(now))
    }

    mutating func messageRead(_ cid: ConnectionID, _ id: SpoolID, _ result: ReadResult, now: Int64) -> [DeliveryAction] {
        messageRead(cid, id, result, now: .both(now))
    }

    mutating func sendRefused(_ cid: ConnectionID, _ id: SpoolID, now: Int64) -> [DeliveryAction] {
        sendRefused(cid, id, now: .both(now))
    }

    mutating func messageFinished(_ cid: ConnectionID, _ id: SpoolID, _ outcome: DeliveryAttemptOutcome,
                                  tls: String?, now: Int64) -> [DeliveryAction] {
        messageFinished(cid, id, outcome, tls: tls, now: .both(now))
    }

    mutating func connectionClosed(_ cid: ConnectionID, failure: UpstreamFailure?, now: Int64) -> [DeliveryAction] {
        connectionClosed(cid, failure: failure, now: .both(now))
    }
}

extension DeliveryQueue.ReadResult {
    /// Read, prepared as the queue's rules prepare it in tests (the default `prepare`).
    static func ready(_ envelope: SpoolEnvelope, recipients: [String]? = nil) -> Self {
        .ready(UpstreamMessage(sender: envelope.sender, recipients: recipients ?? envelope.pendingRecipients, content: [1]))
    }
}
