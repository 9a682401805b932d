/// When to try a deferred message again, and when to give up on it.
///
/// Exponential backoff from `retryMin`, doubling per attempt, capped at `retryMax`
/// (config `queue.retry_min` / `retry_max`), with "equal jitter": the wait is drawn
/// uniformly from [delay/2, delay], so messages deferred together by one upstream
/// outage do not all come back in the same second, yet never wait less than half the
/// schedule nor more than `retryMax`. Pure: the random source is injected.
public struct RetrySchedule: Sendable, Equatable {
    /// Milliseconds.
    public var retryMin: Int64
    /// Milliseconds.
    public var retryMax: Int64

    public init(retryMin: Int64, retryMax: Int64) {
        precondition(retryMin > 0 && retryMax >= retryMin, "retry_min must be positive and not above retry_max")
        self.retryMin = retryMin
        self.retryMax = retryMax
    }

    /// The un-jittered delay after `attempts` failed attempts (1 = the first failure).
    public func baseDelay(afterAttempts attempts: Int) -> Int64 {
        let doublings = max(0, attempts - 1)
        // Stop doubling before overflow: 2^62 ms is far beyond any retry_max.
        var delay = retryMin
        for _ in 0..<min(doublings, 62) {
            if delay >= retryMax { break }
            delay = delay > retryMax / 2 ? retryMax : delay * 2
        }
        return min(delay, retryMax)
    }

    /// The jittered delay in milliseconds, within [max(retryMin, base/2), base].
    public func delay(afterAttempts attempts: Int, using random: inout some RandomNumberGenerator) -> Int64 {
        let base = baseDelay(afterAttempts: attempts)
        let low = max(retryMin, base / 2)
        return low == base ? base : Int64.random(in: low...base, using: &random)
    }

    /// Unix seconds of the next attempt after a failure at `now` (unix seconds).
    public func nextAttempt(afterAttempts attempts: Int, now: Int64,
                            using random: inout some RandomNumberGenerator) -> Int64 {
        let milliseconds = delay(afterAttempts: attempts, using: &random)
        return now + (milliseconds + 999) / 1000
    }

    public func nextAttempt(afterAttempts attempts: Int, now: Int64) -> Int64 {
        var random = SystemRandomNumberGenerator()
        return nextAttempt(afterAttempts: attempts, now: now, using: &random)
    }

    /// True when a message received at `receivedAt` has been queued longer than
    /// `maxAge` (all unix seconds; config `queue.max_age`) and should become a dead letter.
    public static func isExpired(receivedAt: Int64, now: Int64, maxAge: Int64) -> Bool {
        now - receivedAt >= maxAge
    }
}
