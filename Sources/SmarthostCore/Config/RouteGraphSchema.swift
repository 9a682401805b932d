/// A route's `transport:` and, for `transport: graph`, what Microsoft Graph delivery needs
/// (issue 22): `graph_url` (default https://graph.microsoft.com) in place of host and port,
/// `username` as the sending mailbox, `oauth2:` for the token — its scope defaulting to
/// Graph's — and `ca_file` to verify `graph_url` (the token endpoint keeps `oauth2.ca_file`).
extension RelayConfig.Schema {
    static let graphRouteKeys = ["transport", "graph_url"]
    static let graphScope = "https://graph.microsoft.com/.default"
    /// Keys that say how to speak SMTP: meaningless on a Graph route, so refused there
    /// rather than silently unused.
    static let smtpOnlyKeys = ["host", "port", "tls", "password", "password_file", "password_env", "allow_plaintext_auth"]

    mutating func decodeTransport(_ section: Section) -> UpstreamTransport {
        guard let field = section.field("transport") else {
            if let url = section.field("graph_url") {
                reader.report(url.keyLine, url.path, "only used with transport: graph")
            }
            return .smtp
        }
        return reader.choice(field, UpstreamTransport.self) ?? .smtp
    }

    mutating func decodeGraphRoute(_ section: Section, _ context: RouteContext) -> RouteSettings? {
        for key in Self.smtpOnlyKeys {
            guard let field = section.field(key) else { continue }
            let why = key.hasPrefix("password") ? "Graph authenticates with oauth2: only"
                : "graph_url says where, and Graph is always HTTPS"
            reader.report(field.keyLine, field.path, "not used with transport: graph (\(why))")
        }
        var url = GraphRequest.defaultURL
        if let field = section.field("graph_url"), let text = reader.string(field) {
            if Self.graphEndpoint(text) != nil { url = text } else {
                reader.report(field.line, field.path, "\(text) is not an https:// URL with a host (e.g. https://graph.microsoft.com)")
            }
        }
        let endpoint = Self.graphEndpoint(url) ?? (host: "graph.microsoft.com", port: 443)
        let auth = decodeAuth(section, tls: .implicit)
        if auth.username == nil {
            reader.missing(section, "username", "transport: graph needs the sending mailbox (its address)")
        }
        if !section.has("oauth2") {
            reader.missing(section, "oauth2", "transport: graph authenticates with an OAuth2 token (provider: microsoft, client credentials)")
        }
        var route = RouteSettings(host: endpoint.host, port: endpoint.port, tls: .implicit, domain: context.hostname,
                                  username: auth.username)
        route.missingCredential = auth.missing
        route.oauth2 = auth.oauth2
        if let oauthField = section.field("oauth2"), oauthField.node.mapping?["scope"] == nil {
            // A token for outlook.office365.com (the SMTP default) is refused by Graph with 401.
            route.oauth2?.scope = Self.graphScope
        }
        route.transport = .graph
        route.graphURL = url
        route.limits = decodeLimits(section)
        decodeOptions(section, into: &route)
        guard auth.username != nil, route.oauth2 != nil else { return nil }
        return route
    }

    /// `https://host[:port][/path]`: the host (IPv6 literal without brackets) and port, or
    /// nil when `text` is not such a URL. No query, fragment, user info or white space.
    static func graphEndpoint(_ text: String) -> (host: String, port: UInt16)? {
        guard text.lowercased().hasPrefix("https://"), !text.contains(where: { $0.isWhitespace || $0 == "?" || $0 == "#" || $0 == "@" })
        else { return nil }
        let rest = text.dropFirst("https://".count)
        let authority = rest.prefix { $0 != "/" }
        var host = Substring(authority), port: UInt16 = 443
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = UInt16(after.dropFirst()), value > 0 else { return nil }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let value = UInt16(authority[authority.index(after: colon)...]), value > 0 else { return nil }
            host = authority[..<colon]
            port = value
        }
        guard !host.isEmpty else { return nil }
        return (String(host), port)
    }
}
