import Testing
@testable import SmarthostCore

@Suite struct RoutePaceTests {
    static func may(_ pace: inout RoutePace, _ now: Int64) -> Bool { pace.mayStart(now: now) }
    static func next(_ pace: inout RoutePace, _ now: Int64) -> Int64? { pace.nextStartAt(now: now) }

    @Test func withoutLimitsEveryMessageMayStart() {
        var pace = RoutePace(limits: RouteLimits(), defaultConnections: 10)
        for step in 0..<1000 { #expect(Self.may(&pace, Int64(step))); pace.started(now: Int64(step)) }
        #expect(pace.connections == 10 && !pace.isSlowed)
    }

    @Test func aRateIsATokenBucketWithOneSecondOfBurst() {
        var pace = RoutePace(limits: RouteLimits(messagesPerSecond: 2), defaultConnections: 10)
        #expect(Self.may(&pace, 0)); pace.started(now: 0)
        #expect(Self.may(&pace, 0)); pace.started(now: 0)
        #expect(!Self.may(&pace, 0))
        #expect(Self.next(&pace, 0) == 500)
        #expect(!Self.may(&pace, 499))
        #expect(Self.may(&pace, 500))
    }

    @Test func aSlowRateStillLetsOneMessageGo() {
        var pace = RoutePace(limits: RouteLimits(messagesPerSecond: 30.0 / 60), defaultConnections: 3)
        #expect(Self.may(&pace, 0)); pace.started(now: 0)
        #expect(Self.next(&pace, 0) == 2000)
    }

    @Test func throttlingHalvesRateAndConnectionsOncePerBurst() {
        var pace = RoutePace(limits: RouteLimits(messagesPerSecond: 8, connections: 4), defaultConnections: 10)
        let first = pace.throttled(now: 1000)
        #expect(first == RoutePace.Change(slower: true, messagesPerSecond: 4, connections: 2))
        let sameBurst = pace.throttled(now: 1000 + RoutePace.decreaseGuardMilliseconds - 1)
        #expect(sameBurst == nil)
        let next = pace.throttled(now: 1000 + RoutePace.decreaseGuardMilliseconds)
        #expect(next?.messagesPerSecond == 2)
        #expect(pace.connections == 1)
    }

    @Test func withoutARateTheDeliveredRateIsHalvedAndRestored() {
        var pace = RoutePace(limits: RouteLimits(), defaultConnections: 4)
        for ms in stride(from: Int64(0), to: 10_000, by: 100) { pace.started(now: ms) }  // 10/s
        let change = pace.throttled(now: 10_000)
        #expect(change?.messagesPerSecond == 5)
        var now: Int64 = 10_000
        var last: RoutePace.Change?
        while pace.isSlowed {
            now += RoutePace.coolDownMilliseconds
            if let step = pace.recover(now: now) { last = step }
        }
        #expect(last == RoutePace.Change(slower: false, messagesPerSecond: nil, connections: 4))
    }

    /// Microsoft 365 allows 30 a minute (0.5/s): a route without `rate` that hits it climbs
    /// back in steps of a tenth of where it was halved to, and never past the slowest pace
    /// found too fast, so it does not overshoot at every climb.
    @Test func theWayBackUpIsASlowSawToothUnderTheLimit() {
        var pace = RoutePace(limits: RouteLimits(), defaultConnections: 3)
        for ms in stride(from: Int64(0), to: 2_000, by: 250) { pace.started(now: ms) }  // 4/s
        _ = pace.throttled(now: 2_000)
        #expect(pace.rate == 2)
        let up = pace.recover(now: 2_000 + RoutePace.coolDownMilliseconds)
        #expect(up?.messagesPerSecond == 2.2)
        // Throttled again at 2.2/s: that is the new ceiling, halved again.
        let again = pace.throttled(now: 2_000 + RoutePace.coolDownMilliseconds + 1, sentAt: 2_000 + RoutePace.coolDownMilliseconds)
        #expect(again?.messagesPerSecond == 1.1)
        var now = 2_000 + RoutePace.coolDownMilliseconds + 1
        var highest = 0.0
        while pace.isSlowed {
            now += RoutePace.coolDownMilliseconds
            _ = pace.recover(now: now)
            highest = max(highest, pace.rate ?? 0)
        }
        #expect(highest < 2.2, "the climb stays under the pace found too fast; then the limit is lifted")
        #expect(pace.rate == nil)
    }

    @Test func neverSlowerThanOneMessageAMinute() {
        var pace = RoutePace(limits: RouteLimits(messagesPerSecond: 1.0 / 60), defaultConnections: 1)
        _ = pace.throttled(now: 0)
        #expect(pace.rate == RoutePace.minimumRate)
    }

    @Test func ratesAreDescribedInTheUnitAnOperatorWrites() {
        #expect(RoutePace.describe(nil) == "unlimited")
        #expect(RoutePace.describe(14) == "14/s")
        #expect(RoutePace.describe(0.5) == "30/min")
        #expect(RoutePace.describe(10_000.0 / 3600) == "2.8/s")
        #expect(RoutePace.describe(1.0 / 3600) == "1/h")
    }
}
