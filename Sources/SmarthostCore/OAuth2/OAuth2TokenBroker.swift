import Logging

/// Access tokens for every OAuth2 credential the routes use, on the loop thread: one
/// `TokenCache` per credential (routes and orgs that share a credential share its token),
/// at most one fetch in flight per credential, and fetches on their own worker thread —
/// libcurl blocks, the loop must not. Connections ask with `token(for:_:)`; one that holds
/// a valid token is answered at once, whatever a background refresh is doing.
final class OAuth2TokenBroker {
    /// What a connection gets.
    struct Grant: Sendable {
        var token: Secret
        /// Fetched for this request (the transcript says "fetched"), not from the cache.
        var fetched: Bool
        /// Seconds the token is still valid for, as the endpoint said.
        var expiresIn: Int
    }

    typealias Completion = (Result<Grant, OAuth2TokenError>) -> Void
    typealias Fetch = @Sendable (OAuth2Settings) -> Result<OAuth2Token, OAuth2TokenError>

    private let loop: EventLoop
    private let fetch: Fetch
    private let clock: () -> Int64
    private let logger: Logger?
    private lazy var worker = WorkerThread(name: "oauth2-token")
    private var caches: [String: TokenCache] = [:]
    private var expiries: [String: Int64] = [:]
    private var waiters: [String: [Completion]] = [:]
    private var providers: [String: String] = [:]
    /// Token fetches and failures by provider (`/metrics`).
    var metrics: RelayMetrics?

    init(loop: EventLoop, logger: Logger? = nil, clock: @escaping () -> Int64 = WallClock.nowMilliseconds,
         fetch: @escaping Fetch = OAuth2TokenFetcher.fetch) {
        self.loop = loop
        self.logger = logger
        self.clock = clock
        self.fetch = fetch
    }

    /// Calls `completion` on the loop: at once with a cached token, or when the fetch ends.
    func token(for settings: OAuth2Settings, _ completion: @escaping Completion) {
        let key = settings.cacheKey
        providers[key] = settings.provider.rawValue
        let now = clock()
        var cache = caches[key] ?? TokenCache()
        let decision = cache.request(nowMilliseconds: now)
        caches[key] = cache
        switch decision {
        case .use(let token):
            completion(.success(Grant(token: token, fetched: false, expiresIn: remaining(key, now))))
        case .useAndRefresh(let token):
            startFetch(settings, key: key)
            completion(.success(Grant(token: token, fetched: false, expiresIn: remaining(key, now))))
        case .wait:
            waiters[key, default: []].append(completion)
        case .fetch:
            waiters[key, default: []].append(completion)
            startFetch(settings, key: key)
        }
    }

    /// An upstream refused `token`: the next request for this credential fetches anew.
    func reject(_ token: Secret, for settings: OAuth2Settings) {
        caches[settings.cacheKey]?.reject(token)
    }

    /// Fetches started for the credential so far (tests, logs).
    func fetchCount(for settings: OAuth2Settings) -> Int {
        caches[settings.cacheKey]?.fetches ?? 0
    }

    func stop() {
        worker.stop()
    }

    private func remaining(_ key: String, _ now: Int64) -> Int {
        Int(max((expiries[key] ?? now) - now, 0) / 1000)
    }

    private func startFetch(_ settings: OAuth2Settings, key: String) {
        let back = LoopCallback<Result<OAuth2Token, OAuth2TokenError>> { [weak self] result in
            self?.finished(key: key, result)
        }
        let fetch = self.fetch
        let loop = self.loop
        worker.submit {
            let result = fetch(settings)
            loop.execute { back.call(result) }
        }
    }

    private func finished(key: String, _ result: Result<OAuth2Token, OAuth2TokenError>) {
        let now = clock()
        let waiting = waiters.removeValue(forKey: key) ?? []
        switch result {
        case .success(let token):
            metrics?.tokenFetch(provider: providers[key] ?? "-", failed: false)
            caches[key, default: TokenCache()].fetched(token.accessToken, expiresIn: token.expiresIn, nowMilliseconds: now)
            expiries[key] = now + Int64(token.expiresIn) * 1000
            logger?.info("oauth2 token fetched", metadata: [
                "credential": "\(Self.describe(key))", "expires_in": "\(token.expiresIn)s",
                "fetches": "\(caches[key]?.fetches ?? 0)",
            ])
            let grant = Grant(token: token.accessToken, fetched: true, expiresIn: token.expiresIn)
            for completion in waiting { completion(.success(grant)) }
        case .failure(let error):
            metrics?.tokenFetch(provider: providers[key] ?? "-", failed: true)
            caches[key]?.failed()
            logger?.warning("oauth2 token fetch failed", metadata: ["credential": "\(Self.describe(key))", "error": "\(error)"])
            for completion in waiting { completion(.failure(error)) }
        }
    }

    /// The cache key names the endpoint, client and subject, never a secret; the
    /// separators read better as spaces in a log line.
    private static func describe(_ key: String) -> String {
        key.split(separator: "|").joined(separator: " ")
    }
}
