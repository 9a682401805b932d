/// The configuration as delivery sees it: which route a queued message takes now (routes
/// are re-resolved at every attempt, so a reload applies to mail already queued), how the
/// message is rewritten for it, and the retry policy. A reload makes a new one; its TLS
/// contexts are built on a worker thread as it is made (`ClientTLSContexts`).
final class DeliveryEnvironment: @unchecked Sendable {
    let config: RelayConfig
    let policy: DeliveryPolicy
    private let tlsContexts: ClientTLSContexts

    init(config: RelayConfig) {
        self.config = config
        self.policy = DeliveryPolicy(retryMinMilliseconds: config.queue.retryMinMs,
                                     retryMaxMilliseconds: config.queue.retryMaxMs,
                                     maxAgeMilliseconds: config.queue.maxAgeMs)
        tlsContexts = ClientTLSContexts(caFiles: Self.caFiles(config))
    }

    /// The CA bundle of every route that uses TLS; nil for the system trust store.
    static func caFiles(_ config: RelayConfig) -> Set<String?> {
        var routes = [config.defaultRoute]
        if case .custom(let route) = config.host { routes.append(route) }
        for org in config.orgs {
            if case .custom(let route) = org.route { routes.append(route) }
        }
        // A Graph route's HTTPS is libcurl's, which reads its ca_file itself.
        return Set(routes.filter { $0.tls != .none && $0.transport == .smtp }.map(\.caFile))
    }

    func resolve(_ envelope: SpoolEnvelope) -> ResolvedRoute {
        RouteResolver.resolve(org: envelope.org, config: config)
    }

    func target(for envelope: SpoolEnvelope) -> DeliveryTarget {
        Self.target(for: resolve(envelope).settings)
    }

    /// What the delivery queue needs from this configuration.
    var queueRules: DeliveryQueue.Rules {
        let config = self.config
        return DeliveryQueue.Rules(
            policy: policy,
            target: { [self] envelope in target(for: envelope) },
            defaultConnections: config.queue.connectionsPerRoute,
            holdRecheckMilliseconds: config.queue.retryMinMs,
            delayWarningDue: { envelope, now in NoticePlan.delayWarningDue(for: envelope, config: config, nowMilliseconds: now) },
            prepare: { [self] envelope, content, recipients in prepare(envelope, content: content, recipients: recipients) })
    }

    /// The route as the queue keys and limits it.
    static func target(for route: RouteSettings) -> DeliveryTarget {
        var target = DeliveryTarget(upstream: upstream(for: route), hosts: [route.host] + route.fallbackHosts,
                                    credentialSource: route.password?.origin)
        target.missingCredential = route.missingCredential
        target.limits = route.limits
        // Graph takes 4 concurrent requests per mailbox (learn.microsoft.com/graph/throttling-limits,
        // Outlook service limits); a fifth is a 429.
        if route.transport == .graph, target.limits.connections == nil { target.limits.connections = GraphConnection.defaultConnections }
        return target
    }

    /// What a connection to the route's primary host needs (`smarthost test` uses it alone).
    static func upstream(for route: RouteSettings, recordTranscript: Bool = false) -> UpstreamTarget {
        let oauth = route.oauth2.map { settings in
            UpstreamOAuth(mechanism: settings.mechanism == .oauthbearer ? .oauthbearer : .xoauth2,
                          host: route.host, port: route.port)
        }
        // An OAuth2 route's "password" is the access token, filled in by the connection.
        let credentials = route.username.map { user in
            UpstreamCredentials(username: user, password: route.password?.revealed ?? "", oauth: oauth)
        }
        let parameters = UpstreamParameters(ehloName: route.domain, tlsMode: upstreamMode(route.tls),
                                            credentials: credentials, allowPlaintextAuth: route.allowPlaintextAuth,
                                            recordTranscript: recordTranscript)
        var target = UpstreamTarget(host: route.host, port: route.port, caFile: route.caFile,
                                    timeoutMilliseconds: route.timeoutMs, parameters: parameters, oauth2: route.oauth2,
                                    transport: route.transport)
        target.graphURL = route.transport == .graph ? route.graphURL ?? GraphRequest.defaultURL : nil
        return target
    }

    static func upstreamMode(_ mode: TLSMode) -> UpstreamTLSMode {
        switch mode {
        case .starttls: return .starttls
        case .implicit: return .implicit
        case .none: return .none
        }
    }

    /// One client context per CA bundle, built ahead on a worker thread; on the loop thread.
    func tlsContext(caFile: String?) throws -> TLSContext {
        try tlsContexts.context(caFile: caFile)
    }

    var tlsContextsBeingBuilt: Int { tlsContexts.beingBuilt }
    var tlsContextsBuilt: Int { tlsContexts.builtCount }

    /// The message as it goes upstream: the org header removed (tenant ids never leave the
    /// machine), `From:` filled or replaced per the route, envelope sender = the route's
    /// `from` when it has one, only the recipients still pending, canonical DATA.
    /// `recipients`: this transaction's, when the route takes fewer per message than are
    /// pending; nil for every pending recipient.
    func prepare(_ envelope: SpoolEnvelope, content: [UInt8], recipients: [String]? = nil) -> UpstreamMessage {
        Self.prepare(envelope, content: content, route: resolve(envelope).settings, orgHeader: config.orgHeader,
                     recipients: recipients)
    }

    static func prepare(_ envelope: SpoolEnvelope, content: [UInt8], route: RouteSettings, orgHeader: String,
                        recipients: [String]? = nil) -> UpstreamMessage {
        let recipients = recipients ?? envelope.pendingRecipients
        let from = route.from.map { UpstreamFromAddress(address: $0, displayName: route.fromName) }
        let mode: UpstreamFromRewrite = route.rewriteFrom == .replace ? .replace : .fill
        let rewritten = UpstreamMessageRewriter.rewrite(content, removingHeader: orgHeader, from: from, mode: mode)
        let eightBit = OctetScan.containsHighBit(rewritten.message)
        let utf8Envelope = (route.from ?? envelope.sender).utf8.contains { $0 >= 0x80 }
            || recipients.contains { $0.utf8.contains { $0 >= 0x80 } }
        return UpstreamMessage(sender: route.from ?? envelope.sender, recipients: recipients,
                               content: rewritten.message, needs8BitMIME: eightBit, needsSMTPUTF8: utf8Envelope)
    }
}
