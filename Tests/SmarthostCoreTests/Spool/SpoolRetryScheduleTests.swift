import Testing
@testable import SmarthostCore

@Suite struct SpoolRetryScheduleTests {
    let schedule = RetrySchedule(retryMin: 60_000, retryMax: 3_600_000)

    @Test func baseDelayDoublesFromMinimumAndStopsAtMaximum() {
        let delays = (1...9).map { schedule.baseDelay(afterAttempts: $0) }
        #expect(delays == [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000])
        #expect(schedule.baseDelay(afterAttempts: 0) == 60_000)
        #expect(schedule.baseDelay(afterAttempts: 10_000) == 3_600_000)
    }

    @Test func jitteredDelayStaysWithinBounds() {
        var random = SplitMix64(seed: 42)
        for attempts in 1...20 {
            let base = schedule.baseDelay(afterAttempts: attempts)
            for _ in 0..<200 {
                let delay = schedule.delay(afterAttempts: attempts, using: &random)
                #expect(delay >= max(60_000, base / 2) && delay <= base)
                #expect(delay >= schedule.retryMin && delay <= schedule.retryMax)
            }
        }
    }

    @Test func jitterSpreadsAndIsReproducibleWithTheSameSeed() {
        var first = SplitMix64(seed: 7), second = SplitMix64(seed: 7)
        let a = (0..<50).map { _ in schedule.delay(afterAttempts: 5, using: &first) }
        let b = (0..<50).map { _ in schedule.delay(afterAttempts: 5, using: &second) }
        #expect(a == b)
        #expect(Set(a).count > 10)
    }

    @Test func nextAttemptRoundsUpToWholeSeconds() {
        let tight = RetrySchedule(retryMin: 1500, retryMax: 1500)
        var random = SplitMix64(seed: 1)
        #expect(tight.nextAttempt(afterAttempts: 1, now: 100, using: &random) == 102)
    }

    @Test func expiryCountsFromReceipt() {
        let fiveDays: Int64 = 5 * 86_400
        #expect(!RetrySchedule.isExpired(receivedAt: 1_000, now: 1_000 + fiveDays - 1, maxAge: fiveDays))
        #expect(RetrySchedule.isExpired(receivedAt: 1_000, now: 1_000 + fiveDays, maxAge: fiveDays))
    }
}
