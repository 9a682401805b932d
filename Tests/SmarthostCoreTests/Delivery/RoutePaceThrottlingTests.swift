import Testing
@testable import SmarthostCore

/// Which throttling replies are one event and which say "still too fast" (issue 15): the
/// refused message's start time against the last decrease.
@Suite struct RoutePaceThrottlingTests {
    static func pace() -> RoutePace {
        RoutePace(limits: RouteLimits(messagesPerSecond: 8, connections: 4), defaultConnections: 10)
    }

    @Test func refusalsOfMessagesSentAtTheOldPaceAreOneEvent() {
        var pace = Self.pace()
        #expect(pace.throttled(now: 1000, sentAt: 900)?.messagesPerSecond == 4)
        // In flight when the pace dropped, refused later than the 2 s guard: still the same event.
        #expect(pace.throttled(now: 1000 + RoutePace.decreaseGuardMilliseconds + 500, sentAt: 950) == nil)
        #expect(pace.throttled(now: 1000, sentAt: 1000) == nil, "started in the millisecond of the decrease")
        #expect(pace.rate == 4 && pace.connections == 2)
    }

    @Test func aRefusalOfAMessageSentAtTheNewPaceHalvesAgainAtOnce() {
        var pace = Self.pace()
        _ = pace.throttled(now: 1000, sentAt: 900)
        let again = pace.throttled(now: 1300, sentAt: 1250)
        #expect(again == RoutePace.Change(slower: true, messagesPerSecond: 2, connections: 1))
    }

    @Test func withoutAStartTimeTheGuardDecides() {
        var pace = Self.pace()
        _ = pace.throttled(now: 1000, sentAt: 900)
        #expect(pace.throttled(now: 1000 + RoutePace.decreaseGuardMilliseconds - 1) == nil)
        #expect(pace.throttled(now: 1000 + RoutePace.decreaseGuardMilliseconds)?.messagesPerSecond == 2)
    }

    /// The upstream has just said the last message was one too many: no burst goes after it.
    @Test func aDecreaseLeavesNoBurst() {
        var pace = Self.pace()
        let before = pace.mayStart(now: 0)
        #expect(before, "a full bucket before")
        _ = pace.throttled(now: 0)
        let after = pace.mayStart(now: 0)
        let next = pace.nextStartAt(now: 0)
        let later = pace.mayStart(now: 250)
        #expect(!after)
        #expect(next == 250, "one interval of the slower rate (4/s)")
        #expect(later)
    }
}
