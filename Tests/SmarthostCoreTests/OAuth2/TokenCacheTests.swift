import Testing
@testable import SmarthostCore

/// The token lifecycle with the clock passed in: no sleeps, exact edges.
@Suite struct TokenCacheTests {
    let a = Secret(revealed: "token-a", origin: "t")
    let b = Secret(revealed: "token-b", origin: "t")

    @Test func firstRequestFetchesOthersWaitForTheSameFetch() {
        var cache = TokenCache()
        #expect(cache.request(nowMilliseconds: 0) == .fetch)
        #expect(cache.request(nowMilliseconds: 10) == .wait)
        #expect(cache.request(nowMilliseconds: 20) == .wait)
        #expect(cache.fetches == 1, "one fetch in flight per credential")
        cache.fetched(a, expiresIn: 100, nowMilliseconds: 1_000)
        #expect(cache.request(nowMilliseconds: 1_001) == .use(a))
    }

    @Test func refreshStartsAtEightyPercentWhileTheTokenIsStillUsed() {
        var cache = TokenCache()
        _ = cache.request(nowMilliseconds: 0)
        cache.fetched(a, expiresIn: 100, nowMilliseconds: 0)        // 100 s
        #expect(cache.request(nowMilliseconds: 79_999) == .use(a))
        #expect(cache.request(nowMilliseconds: 80_000) == .useAndRefresh(a))
        // The background fetch is in flight: no second one, the old token still serves.
        #expect(cache.request(nowMilliseconds: 85_000) == .use(a))
        #expect(cache.fetches == 2)
        cache.fetched(b, expiresIn: 100, nowMilliseconds: 86_000)
        #expect(cache.request(nowMilliseconds: 86_001) == .use(b))
    }

    @Test func aTokenIsNotHandedOutInItsLastTenPercent() {
        var cache = TokenCache()
        _ = cache.request(nowMilliseconds: 0)
        cache.fetched(a, expiresIn: 100, nowMilliseconds: 0)
        _ = cache.request(nowMilliseconds: 80_000)                   // refresh starts…
        cache.failed()                                              // …and fails
        #expect(cache.request(nowMilliseconds: 89_999) == .useAndRefresh(a))
        cache.failed()
        #expect(cache.request(nowMilliseconds: 90_000) == .fetch, "expiring soon: wait for a fresh one")
    }

    @Test func marginIsAtMostAMinuteForLongTokens() {
        var cache = TokenCache()
        _ = cache.request(nowMilliseconds: 0)
        cache.fetched(a, expiresIn: 3600, nowMilliseconds: 0)
        #expect(cache.usableUntil == 3_540_000)
        #expect(cache.refreshAt == 2_880_000)
    }

    @Test func rejectingTheCurrentTokenForcesAFetchButAnOlderOneChangesNothing() {
        var cache = TokenCache()
        _ = cache.request(nowMilliseconds: 0)
        cache.fetched(b, expiresIn: 100, nowMilliseconds: 0)
        cache.reject(a)                                             // a connection's stale token
        #expect(cache.request(nowMilliseconds: 1) == .use(b))
        cache.reject(b)
        #expect(cache.request(nowMilliseconds: 2) == .fetch)
    }

    @Test func aFailedFirstFetchLetsTheNextRequestTryAgain() {
        var cache = TokenCache()
        #expect(cache.request(nowMilliseconds: 0) == .fetch)
        cache.failed()
        #expect(cache.request(nowMilliseconds: 1) == .fetch)
    }
}
