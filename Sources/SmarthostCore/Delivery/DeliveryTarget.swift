/// A resolved route as the queue sees it: the upstream its connections go to
/// (`UpstreamTarget`, primary host first) and the queue-side facts beside it — every host in
/// the order they are tried, the provider's limits, a missing secret, and the `RouteKey`
/// that pooled connections and route health are keyed by. The queue picks the host of each
/// connection (`connection(to:)`), so a connection only ever knows one.
public struct DeliveryTarget: Sendable {
    /// What each connection needs; its `host` is the primary until the queue picks.
    public var upstream: UpstreamTarget {
        didSet { key = Self.makeKey(upstream, hosts, credentialSource) }
    }
    /// The route's hosts in the order they are tried; the first is the primary.
    public var hosts: [String] {
        didSet { key = Self.makeKey(upstream, hosts, credentialSource) }
    }
    /// Where the password came from (`Secret.origin`: `file …`, `env …`, `inline`), so the
    /// route key tells two secrets from two places apart even before their digests do.
    public var credentialSource: String? {
        didSet { key = Self.makeKey(upstream, hosts, credentialSource) }
    }
    /// The route's secret does not exist yet (`RouteSettings.missingCredential`): nothing is
    /// attempted, its messages are held until a restart or reload brings it.
    public var missingCredential: String?
    /// The provider's limits (`rate`, `connections`, `max_recipients_per_message`).
    public var limits = RouteLimits()
    /// Connections and route health are shared by messages whose targets have the same key:
    /// every host of the route, not the one a connection happens to use, and the credential.
    /// Made when the route is (a digest of its secret is in it), not per message.
    public private(set) var key: RouteKey

    public init(upstream: UpstreamTarget, hosts: [String] = [], credentialSource: String? = nil) {
        self.upstream = upstream
        self.hosts = hosts.isEmpty ? [upstream.host] : hosts
        self.credentialSource = credentialSource
        key = Self.makeKey(upstream, self.hosts, credentialSource)
    }

    public init(host: String, port: UInt16, caFile: String?, timeoutMilliseconds: Int64,
                parameters: UpstreamParameters, oauth2: OAuth2Settings? = nil, hosts: [String] = []) {
        self.init(upstream: UpstreamTarget(host: host, port: port, caFile: caFile, timeoutMilliseconds: timeoutMilliseconds,
                                           parameters: parameters, oauth2: oauth2),
                  hosts: hosts)
    }

    private static func makeKey(_ upstream: UpstreamTarget, _ hosts: [String], _ source: String?) -> RouteKey {
        RouteKey(hosts: hosts, port: upstream.port, tlsMode: upstream.parameters.tlsMode,
                 ehloName: upstream.parameters.ehloName, caFile: upstream.caFile,
                 credential: .of(upstream.parameters.credentials, source: source, oauth2: upstream.oauth2),
                 graphURL: upstream.graphURL)
    }

    public var port: UInt16 { upstream.port }

    /// The route as logs and `status` name it: every host, primary first.
    public var routeName: String {
        hosts.count == 1 ? upstream.displayName : hosts.map { Self.endpoint($0, port) }.joined(separator: ",")
    }

    /// What a connection to one of the route's hosts needs.
    public func connection(to host: String) -> UpstreamTarget {
        upstream.connecting(to: host)
    }

    static func endpoint(_ host: String, _ port: UInt16) -> String { UpstreamTarget.endpoint(host, port) }
}
