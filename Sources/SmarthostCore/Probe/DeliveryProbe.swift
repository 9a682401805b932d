/// `smarthost test`: one message through one route, right now and not via the queue, on
/// its own event loop with the same `DeliveryConnection` the daemon uses, so what it
/// proves is what delivery will do. It records the masked dialogue and turns a failure
/// into a `ProbeFailure` that names the step and the fix.
public struct ProbeRequest: Sendable {
    public var route: RouteSettings
    public var recipient: String
    /// `--from`: the envelope sender when the route has no `from`.
    public var sender: String?
    /// This machine's name: the fallback sender's domain and the Message-ID's right side.
    public var hostname: String
    /// The org header to strip (the test message has none, but `prepare` wants to know).
    public var orgHeader: String
    /// Tenant id, shown in the message body only.
    public var org: String?

    public init(route: RouteSettings, recipient: String, sender: String? = nil, hostname: String,
                orgHeader: String = RelayConfig.defaultOrgHeader, org: String? = nil) {
        self.route = route
        self.recipient = recipient
        self.sender = sender
        self.hostname = hostname
        self.orgHeader = orgHeader
        self.org = org
    }

    /// The envelope sender as it will go out: the route's `from`, else `--from`, else
    /// `smarthost@<hostname>`.
    public var effectiveSender: String {
        route.from ?? sender ?? "smarthost@\(hostname)"
    }

    /// How long to wait for the greeting: long enough for a slow server, short enough
    /// that a silent implicit-TLS port is diagnosed before the operator gives up.
    public var greetingWaitMilliseconds: Int64 { min(route.timeoutMs, 10_000) }
}

/// What `smarthost test` prints and exits with.
public struct ProbeReport: Sendable {
    /// The dialogue, AUTH payloads masked, in order.
    public var transcript: [UpstreamTranscriptLine]
    /// nil: the upstream accepted the message.
    public var failure: ProbeFailure?
    /// The upstream's reply to the end of data, when it came.
    public var dataReply: SMTPReply?
    /// "smtp.example.com:587 (tls starttls)".
    public var target: String

    public var succeeded: Bool { failure == nil }

    /// The last line `smarthost test` prints.
    public var summary: String {
        if let failure { return "FAILED: \(target): \(failure)" }
        return "OK: \(target) accepted the test message" + (dataReply.map { ": \($0.description)" } ?? "")
    }
}

public final class DeliveryProbe: UpstreamConnectionOwner {
    private enum Progress { case connecting, sent, finished }

    private let request: ProbeRequest
    private let message: UpstreamMessage
    private let onLine: (UpstreamTranscriptLine) -> Void
    private var loop: EventLoop?
    private var connection: (any UpstreamConnection)?
    private var progress = Progress.connecting
    private var transcript: [UpstreamTranscriptLine] = []
    private var observed = ProbeFailure.Observations()
    private var result: UpstreamDeliveryResult?
    private var setupFailure: UpstreamFailure?
    private let messageID: SpoolID

    /// Sends the test message and returns once the dialogue is over. `onLine` sees each
    /// transcript line as it happens (the CLI prints them live; a slow step shows where
    /// it hangs). Throws only when the event loop cannot be created.
    public static func run(_ request: ProbeRequest,
                           onLine: @escaping (UpstreamTranscriptLine) -> Void = { _ in }) throws(SystemError) -> ProbeReport {
        let probe = DeliveryProbe(request: request, onLine: onLine)
        return try probe.run()
    }

    private init(request: ProbeRequest, onLine: @escaping (UpstreamTranscriptLine) -> Void) {
        self.request = request
        self.onLine = onLine
        self.messageID = SpoolIDGenerator().next()
        self.message = Self.prepareMessage(request, id: messageID)
        observed.greetingWaitMilliseconds = request.greetingWaitMilliseconds
    }

    private func run() throws(SystemError) -> ProbeReport {
        let loop = try EventLoop()
        self.loop = loop
        let resolver = HostResolver(loop: loop)
        defer { resolver.stop() }
        let tokens = OAuth2TokenBroker(loop: loop)
        defer { tokens.stop() }
        var target = DeliveryEnvironment.upstream(for: request.route, recordTranscript: true)
        target.greetingTimeoutMilliseconds = request.greetingWaitMilliseconds
        let caFile = request.route.caFile
        let factory = UpstreamConnectionFactory(loop: loop, resolver: resolver, tokens: tokens)
        let connection = factory.connection(serial: 1, target: target, tlsContext: { try TLSContext.client(caFile: caFile) },
                                            owner: self)
        connection.onTranscript = { [unowned self] line in self.record(line) }
        self.connection = connection
        // Every step has its own timer; this only guards against a bug leaving the loop running.
        let guardTimer = loop.schedule(afterMilliseconds: request.route.timeoutMs * 12 + 30_000) { [unowned self] in
            self.setupFailure = self.setupFailure ?? UpstreamFailure(step: .protocol, detail: "the test did not finish in time")
            self.connection?.close()
            loop.stop()
        }
        connection.start()
        loop.run()
        loop.cancel(guardTimer)
        self.connection = nil
        self.loop = nil
        return report(target: target)
    }

    // MARK: UpstreamConnectionOwner

    func upstreamConnection(_ connection: any UpstreamConnection, _ event: UpstreamConnectionEvent) {
        switch event {
        case .ready: connectionReady(connection)
        case .finished(_, let outcome): finished(outcome)
        case .closed(let failure): closed(failure)
        }
    }

    private func connectionReady(_ connection: any UpstreamConnection) {
        // Act after the connection's current event is handled, never inside it.
        loop?.schedule(afterMilliseconds: 0) { [weak self, weak connection] in
            guard let self, let connection else { return }
            switch self.progress {
            case .connecting:
                self.progress = .sent
                connection.send(messageID: self.messageID, message: self.message)
            case .sent, .finished:
                connection.quit()
            }
        }
    }

    private func finished(_ outcome: UpstreamSendResult) {
        progress = .finished
        switch outcome {
        case .transaction(let result): self.result = result
        case .notSent(let failure): self.setupFailure = failure
        }
    }

    private func closed(_ failure: UpstreamFailure?) {
        // A failure after the message's result (say, a close without QUIT) changes nothing.
        if result == nil, setupFailure == nil, let failure { setupFailure = failure }
        loop?.stop()
    }

    // MARK: Recording

    private func record(_ line: UpstreamTranscriptLine) {
        transcript.append(line)
        switch line {
        case .sent(let command): observed.lastCommand = command
        case .received: observed.sawReply = true
        case .connected: observed.connected = true
        case .tlsEstablished: observed.tlsEstablished = true
        case .dataSent: observed.dataSent = true
        case .note: break
        }
        onLine(line)
    }

    private func report(target: UpstreamTarget) -> ProbeReport {
        let endpoint = request.route.endpoint
        let failure = result?.failure ?? setupFailure
            ?? (result == nil ? UpstreamFailure(step: .protocol, detail: "the connection ended before the message was sent") : nil)
        return ProbeReport(
            transcript: transcript,
            failure: failure.map {
                ProbeFailure.classify($0, mode: request.route.tls, endpoint: endpoint, observed: observed,
                                      oauth: request.route.oauth2 != nil)
            },
            dataReply: result?.dataReply,
            target: request.route.transport == .graph
                ? "\(endpoint) (transport graph, mailbox \(request.route.username ?? "-"))"
                : "\(endpoint) (tls \(request.route.tls.rawValue))")
    }

    // MARK: The test message

    /// Goes through `DeliveryEnvironment.prepare` like any queued message, so the route's
    /// `from`/`from_name`/`rewrite_from` apply exactly as they will in delivery.
    static func prepareMessage(_ request: ProbeRequest, id: SpoolID) -> UpstreamMessage {
        let now = ReceivedHeader.currentUnixSeconds()
        let sender = request.sender ?? "smarthost@\(request.hostname)"
        let envelope = SpoolEnvelope(id: id, receivedAt: Int64(now), sender: sender, recipients: [request.recipient],
                                     org: request.org, heloName: request.hostname, clientAddress: "127.0.0.1")
        return DeliveryEnvironment.prepare(envelope, content: testMessage(request, id: id, unixSeconds: now),
                                           route: request.route, orgHeader: request.orgHeader)
    }

    static func testMessage(_ request: ProbeRequest, id: SpoolID, unixSeconds: Int) -> [UInt8] {
        let from = request.route.from.map { UpstreamFromAddress(address: $0, displayName: request.route.fromName) }
            ?? UpstreamFromAddress(address: request.effectiveSender)
        var text = String(decoding: UpstreamMessageRewriter.fromHeader(from), as: UTF8.self)
        text += "To: <\(request.recipient)>\r\n"
        text += "Subject: smarthost test message\r\n"
        text += "Date: \(ReceivedHeader.rfc5322Date(unixSeconds: unixSeconds))\r\n"
        text += "Message-ID: <smarthost-test.\(id.rawValue)@\(request.hostname)>\r\n"
        text += "MIME-Version: 1.0\r\n"
        text += "Content-Type: text/plain; charset=us-ascii\r\n"
        text += "\r\n"
        text += "This is a test message from smarthost on \(request.hostname).\r\n"
        text += "It was sent through the route for \(request.org.map { "org \($0)" } ?? "the host level") "
            + "to \(request.route.endpoint) (tls \(request.route.tls.rawValue)).\r\n"
        text += "If you can read it, these mail settings work.\r\n"
        return Array(text.utf8)
    }
}
