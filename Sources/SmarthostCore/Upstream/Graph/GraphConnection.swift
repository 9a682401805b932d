/// One Microsoft Graph "connection" behind the transport seam: there is no socket to keep,
/// so it is a token and a mailbox that take one message at a time. `start` gets the token
/// from the OAuth2 broker and says `.ready`; `send` POSTs `sendMail` on a pool thread
/// (libcurl blocks, the loop must not) and maps the answer with `GraphOutcome`. A 401
/// fetches a fresh token and sends once more; a refusal that is the route's (a second 401,
/// 403, 404) or no HTTP answer at all closes it with the failure, so the queue marks the
/// route down, as it does for a refused SMTP AUTH.
final class GraphConnection: UpstreamConnection {
    private enum State { case idle, token, ready, sending, closed }

    /// Graph's concurrent requests per mailbox: the default `connections` of a Graph route.
    static let defaultConnections = 4

    let serial: UInt64
    let target: UpstreamTarget
    private let loop: EventLoop
    private let tokens: OAuth2TokenBroker
    private let workers: GraphWorkerPool
    private let post: GraphPost
    private weak var owner: (any UpstreamConnectionOwner)?
    private var state = State.idle
    private var token: Secret?
    private var inHand: (id: SpoolID, message: UpstreamMessage, freshTokenTried: Bool)?
    private var startedAt: Int64?
    var onStep: ((String, Double) -> Void)?
    var onTranscript: ((UpstreamTranscriptLine) -> Void)?

    /// The blocking POST, injectable for tests of the connection's promises.
    typealias GraphPost = @Sendable (_ url: String, _ headers: [String], _ body: [UInt8], _ caFile: String?,
                                     _ timeoutMilliseconds: Int64) -> Result<CurlHTTPClient.Response, CurlHTTPClient.TransportError>

    static let curlPost: GraphPost = { url, headers, body, caFile, timeout in
        Result { () throws(CurlHTTPClient.TransportError) in
            try CurlHTTPClient(caFile: caFile, timeoutMilliseconds: timeout).post(url: url, headers: headers, body: body)
        }
    }

    init(serial: UInt64, target: UpstreamTarget, loop: EventLoop, tokens: OAuth2TokenBroker,
         workers: GraphWorkerPool = .shared, post: @escaping GraphPost = GraphConnection.curlPost,
         owner: any UpstreamConnectionOwner) {
        self.serial = serial
        self.target = target
        self.loop = loop
        self.tokens = tokens
        self.workers = workers
        self.post = post
        self.owner = owner
    }

    var canSend: Bool { state == .ready && inHand == nil }
    /// libcurl verifies the certificate and host name; which TLS it negotiated it keeps.
    var tlsDescription: String? { "TLS (libcurl, HTTPS)" }
    private var mailbox: String { target.parameters.credentials?.username ?? "" }
    private var baseURL: String { target.graphURL ?? GraphRequest.defaultURL }

    func start() {
        guard state == .idle else { return }
        startedAt = MonotonicClock.nanoseconds()
        fetchToken(refusing: nil)
    }

    func send(messageID: SpoolID, message: UpstreamMessage) {
        precondition(canSend, "send only when ready, one message at a time")
        inHand = (messageID, message, false)
        state = .sending
        transmit()
    }

    func quit() {
        // Nothing to say goodbye to: an idle Graph connection just ends.
        close()
    }

    /// A request in flight cannot be taken back: its message is reported as one that may
    /// have been delivered (a retry may duplicate it), and its late answer is dropped
    /// (`answered` hears it in `.closed`). A message waiting for a fresh token after a 401
    /// has no request in flight: Graph refused it, so it was not sent.
    func close() {
        guard state != .closed else { return }
        let requestInFlight = state == .sending
        state = .closed
        if let hand = inHand {
            inHand = nil
            let result: UpstreamSendResult
            if requestInFlight {
                result = .transaction(UpstreamDeliveryResult(failure: UpstreamFailure(
                    step: .data, detail: "closed while the Graph request to \(baseURL) was in flight",
                    mayHaveBeenDelivered: true, reason: .abandoned)))
            } else {
                result = .notSent(UpstreamFailure(step: .token, detail: "closed while a fresh token for \(baseURL) was fetched",
                                                  reason: .abandoned))
            }
            owner?.upstreamConnection(self, .finished(hand.id, result))
        }
        owner?.upstreamConnection(self, .closed(nil))
    }

    // MARK: Token

    private func fetchToken(refusing refused: Secret?) {
        guard let settings = target.oauth2 else {
            let failure = UpstreamFailure(step: .token, detail: "a Graph route needs oauth2", permanent: false)
            return later { $0.closeFailed(failure) }
        }
        state = .token
        if let refused { tokens.reject(refused, for: settings) }
        tokens.token(for: settings) { [weak self] result in
            self?.later { connection in
                guard connection.state == .token else { return }
                switch result {
                case .success(let grant): connection.tokenArrived(grant, settings: settings)
                case .failure(let error):
                    connection.note("oauth2 token: FAILED: \(error.detail)")
                    let failure = UpstreamFailure(step: .token, detail: error.description, reason: .tokenFailed(error))
                    connection.closeFailed(failure)
                }
            }
        }
    }

    private func tokenArrived(_ grant: OAuth2TokenBroker.Grant, settings: OAuth2Settings) {
        let how = grant.fetched ? "fetched from \(settings.tokenURL)" : "cached"
        note("oauth2 token: \(how), access token ******** valid \(grant.expiresIn) s")
        token = grant.token
        if let startedAt {
            onStep?("auth", Double(MonotonicClock.nanoseconds() - startedAt) / 1e9)
            self.startedAt = nil
        }
        if inHand != nil {
            state = .sending
            return transmit()
        }
        state = .ready
        owner?.upstreamConnection(self, .ready)
    }

    // MARK: The request

    private func transmit() {
        guard let hand = inHand, let token else { return }
        let request: GraphRequest
        switch GraphRequest.sendMail(base: baseURL, mailbox: mailbox, token: token, message: hand.message) {
        case .success(let made): request = made
        case .failure(let failure):
            note("not sent: \(failure.detail)")
            return later { $0.finish(.transaction(UpstreamDeliveryResult(failure: failure))) }
        }
        onTranscript?(.sent("POST \(request.url)"))
        for line in request.maskedHeaders { onTranscript?(.sent(line)) }
        onTranscript?(.dataSent(request.body.count))
        let back = LoopCallback<Result<CurlHTTPClient.Response, CurlHTTPClient.TransportError>> { [weak self] result in
            self?.answered(result)
        }
        let post = self.post, loop = self.loop, caFile = target.caFile, timeout = target.timeoutMilliseconds
        workers.submit {
            let result = post(request.url, request.headers, request.body, caFile, timeout)
            loop.execute { back.call(result) }
        }
    }

    private func answered(_ result: Result<CurlHTTPClient.Response, CurlHTTPClient.TransportError>) {
        guard state == .sending, let hand = inHand else { return }
        switch result {
        case .failure(let error):
            note("no HTTP answer: \(error.description)")
            let failure = GraphOutcome.transportFailure(error, url: baseURL)
            if failure.mayHaveBeenDelivered {
                finish(.transaction(UpstreamDeliveryResult(failure: failure)), thenClose: failure)
            } else {
                finish(.notSent(failure), thenClose: failure)
            }
        case .success(let response):
            let outcome = GraphOutcome.classify(status: response.status, retryAfter: response.header("retry-after"),
                                                body: response.body)
            note(GraphHints.responseLine(response, outcome: outcome))
            for hint in GraphHints.hints(for: outcome) { note("hint: " + hint) }
            switch outcome {
            case .tokenRefused where !hand.freshTokenTried:
                inHand?.freshTokenTried = true
                note("fresh oauth2 token; sending again")
                fetchToken(refusing: token)
            case .tokenRefused, .routeRefused:
                let failure = outcome.failure!
                finish(.notSent(failure), thenClose: failure)
            default:
                finish(outcome.sendResult(recipients: hand.message.recipients))
            }
        }
    }

    /// The message's one `.finished`; then `.ready` again, or the close that `thenClose` says.
    private func finish(_ result: UpstreamSendResult, thenClose failure: UpstreamFailure? = nil) {
        guard let hand = inHand else { return }
        inHand = nil
        state = failure == nil ? .ready : .closed
        owner?.upstreamConnection(self, .finished(hand.id, result))
        if let failure {
            owner?.upstreamConnection(self, .closed(failure))
        } else if state == .ready {
            owner?.upstreamConnection(self, .ready)
        }
    }

    private func closeFailed(_ failure: UpstreamFailure) {
        guard state != .closed else { return }
        state = .closed
        if let hand = inHand {
            inHand = nil
            owner?.upstreamConnection(self, .finished(hand.id, .notSent(failure)))
        }
        owner?.upstreamConnection(self, .closed(failure))
    }

    // MARK: Helpers

    /// On the next turn of the loop, never inside the call that caused it.
    private func later(_ body: @escaping (GraphConnection) -> Void) {
        _ = loop.schedule(afterMilliseconds: 0) { [weak self] in
            guard let self, self.state != .closed else { return }
            body(self)
        }
    }

    private func note(_ text: String) {
        onTranscript?(.note(text))
    }
}
