import Logging

/// What every inbound connection shares for one configuration generation: the loop, the
/// spool, the limits and the routing. A reload makes a new context for new connections;
/// connections in flight keep the one they started with.
final class InboundContext {
    let loop: EventLoop
    let spool: Spool
    let config: RelayConfig
    let logger: Logger
    let classifier: OrgClassifier
    let tenancy: OrgTenancy
    /// The server that owns the connections of this configuration generation; set by
    /// `InboundServer` when the context becomes current, so a reload cannot forget it.
    weak var delegate: InboundContextDelegate?
    var metrics: RelayMetrics?

    init(loop: EventLoop, spool: Spool, config: RelayConfig, logger: Logger) {
        self.loop = loop
        self.spool = spool
        self.config = config
        self.logger = logger
        self.classifier = OrgClassifier(config: config)
        self.tenancy = OrgTenancy(config: config)
    }

    var hostname: String { config.hostname }
    var orgHeader: String { config.orgHeader }

    /// `onThisHost`: the client runs on this machine (`ClientIdentity.isOnThisHost`), so its
    /// bare local parts are taken and its header fields qualified.
    func sessionConfiguration(client identity: ClientIdentity, onThisHost: Bool) -> InboundSession.Configuration {
        let client = identity.description
        var configuration = InboundSession.Configuration(
            hostname: config.hostname, maxMessageSize: Int(config.limits.maxMessageSize),
            maxRecipients: config.limits.maxRecipients, clientAddress: client,
            clientAllowed: isAllowed(identity),
            observer: { [logger, metrics] observation in
                guard case .refusal(let refusal) = observation else { return }
                RefusalLog.log(refusal, client: client, to: logger)
                metrics?.refused(code: refusal.reply.code)
            },
            storageCheck: { [spool] size in
                do throws(SpoolError) {
                    try spool.checkStorage(expectedSize: size)
                    return nil
                } catch {
                    return error.reply
                }
            },
            bareLineFeed: config.limits.bareLineFeed,
            commandTimeoutMilliseconds: config.limits.idleTimeoutMs,
            dataTimeoutMilliseconds: config.limits.dataTimeoutMs,
            connectionTimeMilliseconds: config.limits.maxConnectionTimeMs)
        configuration.localPartsAllowed = onThisHost
        return configuration
    }

    func connectionClosed(_ connection: InboundConnection) {
        delegate?.connectionClosed(connection)
    }

    /// The organization and route of a message, decided once at acceptance and recorded in
    /// its envelope (delivery re-resolves the route from the org, so a reload still applies).
    /// An org header that cannot be an org id is ignored and logged, once for the message.
    func route(id: SpoolID, sender: String, headers: [UInt8]) -> (choice: OrgChoice, route: ResolvedRoute) {
        let headerValue = UpstreamMessageRewriter.headerValue(named: config.orgHeader, in: headers)
        let choice = classifier.classify(headerValue: headerValue, sender: sender)
        if let ignored = choice.ignoredHeaderValue { logIgnoredOrgHeader(ignored, id: id) }
        return (choice, RouteResolver.resolve(org: choice.orgID, config: config))
    }

    /// The value's start only: the line stays short whatever the application sent.
    private func logIgnoredOrgHeader(_ value: String, id: SpoolID) {
        logger.warning("org header ignored", metadata: [
            "id": "\(id)", "header": "\(config.orgHeader)", "reason": "not an org id ([A-Za-z0-9._-], 1 to 64)",
            "length": "\(value.utf8.count)",
            "value": "\(String(String.UnicodeScalarView(value.unicodeScalars.prefix(64))))",
        ])
    }

    func messageAccepted(_ envelope: SpoolEnvelope, content: [UInt8]?, client: ClientIdentity) {
        logger.info("accepted", metadata: [
            "id": "\(envelope.id)", "from": "<\(envelope.sender)>", "nrcpt": "\(envelope.recipients.count)",
            "size": "\(envelope.size)", "org": "\(envelope.org ?? "-")", "layer": "\(envelope.layer ?? "-")",
            "route": "\(envelope.route ?? "-")", "client": "\(client)",
        ])
        metrics?.accepted(RelayMetrics.MessageLabels(org: envelope.org, layer: envelope.layer), bytes: envelope.size)
        delegate?.messageAccepted(envelope, content: content)
    }
}

/// What connections report upward, through their context, to the server that owns them.
protocol InboundContextDelegate: AnyObject {
    /// A message durably in the spool and answered: envelope, and the content when in memory.
    func messageAccepted(_ envelope: SpoolEnvelope, content: [UInt8]?)
    func connectionClosed(_ connection: InboundConnection)
    /// A transaction refused or aborted (for `STATUS=`).
    func transactionRejected()
    var isStopping: Bool { get }
}
