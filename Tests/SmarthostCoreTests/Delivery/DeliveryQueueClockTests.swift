import Testing
@testable import SmarthostCore

/// Where the two clocks part: someone sets the system time an hour forward or back while
/// mail is queued. Every deadline the queue keeps is on the monotonic clock, so a jump
/// neither fires them all at once (a burst of retries) nor holds them an hour (a stall);
/// what goes to the spool — a deferral's next attempt — is wall time, the jumped one.
@Suite struct DeliveryQueueClockTests {
    typealias T = DeliveryQueueTests
    static let hour: Int64 = 3_600_000
    static let monotonicStart: Int64 = 7_000
    static let jumps: [Int64] = [hour, -hour]

    static func at(_ elapsed: Int64, jump: Int64 = 0) -> DeliveryInstant {
        DeliveryInstant(monotonic: monotonicStart + elapsed, wall: T.start + elapsed + jump)
    }

    /// Twenty messages recovered from the spool, each due ten minutes from now (wall).
    static func deferredQueue() -> (DeliveryQueue, [SpoolEnvelope]) {
        var queue = T.queue(T.target())
        var messages: [SpoolEnvelope] = []
        for _ in 0..<20 {
            var message = T.envelope()
            message.attempts = 1
            message.nextAttemptAt = (T.start + 10 * T.minute) / 1000
            queue.enqueue(message, content: nil, now: at(0))
            messages.append(message)
        }
        return (queue, messages)
    }

    @Test(arguments: jumps) func queuedDeadlinesFollowTheMonotonicClock(jump: Int64) {
        var (queue, _) = Self.deferredQueue()
        #expect(queue.nextWake(now: Self.at(1, jump: jump)) == Self.monotonicStart + 10 * T.minute)
        #expect(T.opens(queue.tick(now: Self.at(1, jump: jump))).isEmpty, "a jump of \(jump) ms fired the retries")
        #expect(T.opens(queue.tick(now: Self.at(10 * T.minute - 1, jump: jump))).isEmpty)
        let opened = T.opens(queue.tick(now: Self.at(10 * T.minute, jump: jump)))
        #expect(opened.count == 2, "a jump of \(jump) ms held the retries past their time")
    }

    @Test(arguments: jumps) func aDeferralIsPersistedInWallTimeAndWaitedForInMonotonicTime(jump: Int64) {
        var queue = T.queue(T.target())
        let message = T.envelope()
        queue.enqueue(message, content: [1], now: Self.at(0))
        _ = queue.tick(now: Self.at(0))
        // The clock is set; then the connection fails.
        let failed = queue.connectionClosed(1, failure: T.connectRefused, now: Self.at(5, jump: jump))
        let deferred = failed.compactMap { if case .record(let record) = $0 { return record.kind }; return nil }
        // The policy reasons in wall time: the message's age (from its persisted
        // `receivedAt`) is what the wall clock says now, jump included.
        let delay = T.queue(T.target()).rules.policy.retryDelay(ageMilliseconds: 5 + jump)
        #expect(deferred == [.deferred(atMilliseconds: T.start + 5 + jump + delay)], "the spool gets the wall time it sees")
        #expect(queue.routesDown(now: Self.monotonicStart + 5 + T.minute - 1) == 1)
        #expect(queue.routesDown(now: Self.monotonicStart + 5 + T.minute) == 0)
        #expect(T.opens(queue.tick(now: Self.at(5 + delay - 1, jump: jump))).isEmpty)
        #expect(T.opens(queue.tick(now: Self.at(5 + delay, jump: jump))).count == 1, "due \(delay) ms later by the monotonic clock")
    }

    @Test(arguments: jumps) func anIdleConnectionQuitsAfterFiveMonotonicSeconds(jump: Int64) {
        var queue = T.queue(T.target())
        let message = T.envelope()
        queue.enqueue(message, content: [1], now: Self.at(0))
        _ = queue.tick(now: Self.at(0))
        _ = queue.connectionReady(1, now: Self.at(0))
        _ = queue.messageFinished(1, message.id, T.delivered, tls: nil, now: Self.at(0))
        _ = queue.connectionReady(1, now: Self.at(0))
        #expect(T.quits(queue.tick(now: Self.at(DeliveryQueue.idleQuitMilliseconds - 1, jump: jump))).isEmpty)
        #expect(T.quits(queue.tick(now: Self.at(DeliveryQueue.idleQuitMilliseconds, jump: jump))) == [1])
    }
}
