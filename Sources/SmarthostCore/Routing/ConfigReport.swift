/// Human-readable text about a configuration: what `smarthost check-config` prints, and
/// the explanation of `smarthost routes`. Passwords appear only as `********` with where
/// they came from; this text goes to terminals, tickets and chat.
public enum ConfigReport {
    /// `configuration OK`, then the listeners, spool and limits, then the resolved route of
    /// the host level and of every org.
    public static func render(_ config: RelayConfig) -> String {
        var out = ["configuration OK"]
        out.append("hostname: \(config.hostname)")
        out.append("listen: " + (config.listen.isEmpty ? "(none; socket activation only)"
            : config.listen.map(\.description).joined(separator: ", ")))
        out.append("spool: \(config.spool)")
        out.append("org header: \(config.orgHeader), trust \(config.orgHeaderTrust.rawValue)"
            + (config.orgHeaderTrust == .senders ? " (the header selects an org only for a sender in its senders)" : ""))
        out.append(limitsLine(config.limits))
        out.append("access: allow " + config.access.allow.map(\.description).joined(separator: ", "))
        out.append(queueLine(config.queue))
        out.append(noticesLine(config))
        out.append("")
        out.append("routes:")
        out += routeBlock(title: "host level", RouteResolver.resolve(org: nil, config: config))
        for org in config.orgs {
            let senders = org.senders.isEmpty ? "" : " (senders: \(org.senders.joined(separator: ", ")))"
            out += routeBlock(title: "org \(org.id)\(senders)", RouteResolver.resolve(org: org.id, config: config))
            if let clients = org.clients {
                out.append("    clients: only " + clients.map(\.description).joined(separator: ", "))
            }
        }
        out.append("  orgs not listed get the host level")
        out += warnings(config).map { "warning: " + $0 }
        return out.joined(separator: "\n") + "\n"
    }

    /// Legal but risky: the relay runs, and says so. `check-config --strict` refuses them.
    public static func warnings(_ config: RelayConfig) -> [String] {
        config.warnings.map(\.description)
            + config.missingCredentials.map { "\($0.route) route: \($0.problem); its mail is held until then" }
    }

    /// Which org a message was given and why, and which layer's route it takes and why.
    public static func explain(_ route: ResolvedRoute, choice: OrgChoice, sender: String?, config: RelayConfig) -> String {
        var out = ["org: " + orgReason(choice, sender: sender)]
        out += tenancyLines(choice, sender: sender, config: config)
        out.append("route: " + layerReason(route, config: config))
        out += routeDetails(route.settings)
        return out.joined(separator: "\n") + "\n"
    }

    /// Which layer's route an org takes and why, and the route's fields, without the
    /// classification line: `smarthost test` names the org itself.
    public static func explain(_ route: ResolvedRoute, config: RelayConfig) -> String {
        (["route: " + layerReason(route, config: config)] + routeDetails(route.settings)).joined(separator: "\n") + "\n"
    }

    // MARK: Reasons

    /// What `org_header_trust` and the org's `clients:` make of the message (the client
    /// itself is not known here, so `clients:` is only listed).
    private static func tenancyLines(_ choice: OrgChoice, sender: String?, config: RelayConfig) -> [String] {
        guard let org = choice.orgID else { return [] }
        var out: [String] = []
        if config.orgHeaderTrust == .senders, case .header = choice.source {
            if let sender, !sender.isEmpty {
                let tenancy = OrgTenancy(config: config)
                let anyone = ClientIdentity.unix(uid: nil)
                let decision = tenancy.decide(choice: choice, sender: sender, client: anyone)
                out.append(decision == .senderNotAllowed(org: org)
                    ? "refused: 550 5.7.1 (org_header_trust: senders, and \(sender) matches none of org \(org)'s senders)"
                    : "trusted: \(sender) matches org \(org)'s senders (org_header_trust: senders)")
            } else {
                out.append("trusted only for an envelope sender in org \(org)'s senders (org_header_trust: senders)")
            }
        }
        if let clients = config.org(org)?.clients {
            out.append("clients: only " + clients.map(\.description).joined(separator: ", ") + "; others get 550 5.7.1")
        }
        return out
    }

    private static func orgReason(_ choice: OrgChoice, sender: String?) -> String {
        let reason = classificationReason(choice, sender: sender)
        guard choice.ignoredHeaderValue != nil else { return reason }
        return reason + "; the org header's value was ignored: not an org id ([A-Za-z0-9._-], 1 to 64 characters)"
    }

    private static func classificationReason(_ choice: OrgChoice, sender: String?) -> String {
        switch choice.source {
        case .header(let header):
            return "\(choice.orgID ?? "?") (from the \(header) header)"
        case .senderPattern(let pattern):
            return "\(choice.orgID ?? "?") (sender \(sender ?? "?") matches \(pattern))"
        case .hostLevel:
            let header = choice.ignoredHeaderValue == nil ? "no org header" : "no usable org header"
            let why = (sender ?? "").isEmpty ? header : "\(header), and sender \(sender!) matches no org's senders"
            return "none, host level (\(why))"
        }
    }

    /// Walks the same precedence the resolver applied, to say in words why this layer won.
    private static func layerReason(_ route: ResolvedRoute, config: RelayConfig) -> String {
        var steps: [String] = []
        if let org = route.orgID {
            switch config.org(org)?.route {
            case .custom: steps.append("org \(org) has use: custom")
            case .useDefault: steps.append("org \(org) has use: default, so the host level applies")
            case nil: steps.append("org \(org) is not configured, so the host level applies")
            }
        }
        if route.layer != .org {
            if case .custom = config.host { steps.append("host has use: custom") } else {
                steps.append("host has use: default, so the default route applies")
            }
        }
        return "\(route.layer.rawValue) layer (" + steps.joined(separator: "; ") + ")"
    }

    // MARK: Blocks

    private static func routeBlock(title: String, _ route: ResolvedRoute) -> [String] {
        ["  \(title): \(route.layer.rawValue) route"] + routeDetails(route.settings).map { "  " + $0 }
    }

    /// The fields of one route, one per line; the password masked.
    static func routeDetails(_ route: RouteSettings) -> [String] {
        var out = route.transport == .graph
            ? ["  upstream: transport graph, graph_url \(route.endpoint), mailbox \(route.username ?? "-")"
                + (route.caFile.map { ", ca_file \($0)" } ?? "")
                + ", timeout \(RelayConfig.Units.formatMilliseconds(route.timeoutMs))"]
            : ["  upstream: \(route.endpoint), tls \(route.tls.rawValue)"
                + (route.caFile.map { ", ca_file \($0)" } ?? "")
                + ", timeout \(RelayConfig.Units.formatMilliseconds(route.timeoutMs)), EHLO \(route.domain)"]
        if let user = route.username, let oauth2 = route.oauth2 {
            out.append("  auth: \(user), \(oauth2.summary)")
        } else if let user = route.username {
            let origin = route.password.map { " (\($0.origin))" } ?? ""
            let plain = route.allowPlaintextAuth ? ", plaintext allowed" : ""
            let password = route.missingCredential.map { "MISSING: \($0)" } ?? route.password?.description ?? "(none)"
            out.append("  auth: \(user), password \(password)\(origin)\(plain)")
        } else {
            out.append("  auth: none (anonymous)")
        }
        if !route.fallbackHosts.isEmpty {
            let fallbacks = route.fallbackHosts.map { RouteSettings.endpoint(host: $0, port: route.port) }
            out.append("  fallback: \(fallbacks.joined(separator: ", ")) (in this order, when the ones before fail)")
        }
        var limits = route.limits
        if route.transport == .graph, limits.connections == nil { limits.connections = GraphConnection.defaultConnections }
        if limits != RouteLimits() {
            var parts: [String] = []
            if let rate = limits.messagesPerSecond { parts.append("rate \(RoutePace.describe(rate))") }
            if let connections = limits.connections { parts.append("connections \(connections)") }
            if let cap = limits.maxRecipientsPerMessage { parts.append("max_recipients_per_message \(cap)") }
            out.append("  limits: " + parts.joined(separator: ", "))
        }
        if let from = route.from {
            let name = route.fromName.map { "\"\($0)\" " } ?? ""
            out.append("  from: \(name)<\(from)>, rewrite_from \(route.rewriteFrom.rawValue)")
        } else {
            out.append("  from: (the message's own sender)")
        }
        return out
    }

    private static func limitsLine(_ limits: RelayConfig.Limits) -> String {
        let ms = RelayConfig.Units.formatMilliseconds, bytes = RelayConfig.Units.formatBytes
        return "limits: max_message_size \(bytes(limits.maxMessageSize)), max_recipients \(limits.maxRecipients), "
            + "max_connections \(limits.maxConnections), max_connections_per_client \(limits.connectionsPerClient), "
            + "max_connection_time \(limits.maxConnectionTimeMs > 0 ? ms(limits.maxConnectionTimeMs) : "0 (no bound)"), "
            + "idle_timeout \(ms(limits.idleTimeoutMs)), "
            + "data_timeout \(ms(limits.dataTimeoutMs)), min_free_space \(bytes(limits.minFreeSpace)), "
            + "bare_lf \(limits.bareLineFeed.rawValue)"
    }

    private static func queueLine(_ queue: RelayConfig.Queue) -> String {
        let ms = RelayConfig.Units.formatMilliseconds
        return "queue: retry \(ms(queue.retryMinMs)) doubling to \(ms(queue.retryMaxMs)), "
            + "dead letter after \(ms(queue.maxAgeMs)), \(queue.connectionsPerRoute) connections per route"
    }

    private static func noticesLine(_ config: RelayConfig) -> String {
        let notices = config.notices
        var parts = [notices.bounceSender ? "failure notice to the sender" : "no failure notice to the sender"]
        parts.append(notices.delayWarningMs > 0
            ? "delay warning after \(RelayConfig.Units.formatMilliseconds(notices.delayWarningMs))" : "no delay warning")
        if let copy = notices.copyTo { parts.append("copies to \(copy)") }
        for org in config.orgs { if let copy = org.noticesCopyTo { parts.append("org \(org.id) copies to \(copy)") } }
        return "notices: " + parts.joined(separator: ", ")
    }
}
