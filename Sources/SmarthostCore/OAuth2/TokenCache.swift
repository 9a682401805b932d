/// The lifecycle of one credential's access token as a value, with the clock passed in:
/// fresh, due for a refresh (still used meanwhile), expired, being fetched. The broker asks
/// it what to do on each request and tells it what the endpoint said.
///
/// Timeline of a token issued at t0 valid for L seconds: from t0 + 80 % L a request still
/// gets it but starts a background refresh; from t0 + L - margin it is no longer handed
/// out (an AUTH a little later must not carry an expired token); margin is 10 % of L, at
/// most 60 s.
struct TokenCache: Sendable {
    enum Decision: Equatable {
        /// Use this token.
        case use(Secret)
        /// Use this token and start a fetch in the background (refresh ahead of expiry).
        case useAndRefresh(Secret)
        /// A fetch is in flight: wait for it.
        case wait
        /// Nothing usable and nothing in flight: start a fetch and wait for it.
        case fetch
    }

    private(set) var token: Secret?
    private(set) var refreshAt: Int64 = 0
    private(set) var usableUntil: Int64 = 0
    private(set) var fetching = false
    /// Fetches started, for logs and tests.
    private(set) var fetches = 0

    static let refreshFraction = 0.8

    mutating func request(nowMilliseconds now: Int64) -> Decision {
        if let token, now < usableUntil {
            guard now >= refreshAt, !fetching else { return .use(token) }
            startFetch()
            return .useAndRefresh(token)
        }
        if fetching { return .wait }
        startFetch()
        return .fetch
    }

    mutating func fetched(_ token: Secret, expiresIn seconds: Int, nowMilliseconds now: Int64) {
        fetching = false
        let lifetime = Int64(max(seconds, 1)) * 1000
        self.token = token
        refreshAt = now + Int64(Double(lifetime) * Self.refreshFraction)
        usableUntil = now + lifetime - min(lifetime / 10, 60_000)
    }

    /// The fetch failed: a token still usable stays (a background refresh may fail while
    /// the current token has minutes left); the next request tries again.
    mutating func failed() {
        fetching = false
    }

    /// An upstream refused `rejected`: forget it if it is still the current one, so the
    /// next request fetches a fresh one (a token other connections already replaced stays).
    mutating func reject(_ rejected: Secret) {
        if token == rejected {
            token = nil
            usableUntil = 0
        }
    }

    private mutating func startFetch() {
        fetching = true
        fetches += 1
    }
}
