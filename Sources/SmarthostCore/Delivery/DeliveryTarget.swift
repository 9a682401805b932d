/// Everything needed to reach one upstream, taken from a resolved route. A route with
/// fallback hosts has one target; the queue picks the host of each connection
/// (`connecting(to:)`), so the connection itself only ever knows one.
public struct DeliveryTarget: Sendable {
    /// The host this connection goes to (the first of `hosts` until the queue picks).
    public var host: String
    public var port: UInt16
    /// The route's hosts in the order they are tried; the first is the primary.
    public var hosts: [String]
    public var caFile: String?
    public var timeoutMilliseconds: Int64
    /// A shorter wait for the greeting than for other replies: `smarthost test` uses it to
    /// tell a silent implicit-TLS port from a slow server quickly. nil: `timeoutMilliseconds`.
    public var greetingTimeoutMilliseconds: Int64?
    public var parameters: UpstreamParameters
    /// The route's secret does not exist yet (`RouteSettings.missingCredential`): nothing is
    /// attempted, its messages are held until a restart or reload brings it.
    public var missingCredential: String?
    /// Set on an OAuth2 route: the token comes from here, before the connection is made.
    public var oauth2: OAuth2Settings?
    /// The provider's limits (`rate`, `connections`, `max_recipients_per_message`).
    public var limits = RouteLimits()

    public init(host: String, port: UInt16, caFile: String?, timeoutMilliseconds: Int64,
                parameters: UpstreamParameters, oauth2: OAuth2Settings? = nil, hosts: [String] = []) {
        self.host = host
        self.port = port
        self.hosts = hosts.isEmpty ? [host] : hosts
        self.caFile = caFile
        self.timeoutMilliseconds = timeoutMilliseconds
        self.parameters = parameters
        self.oauth2 = oauth2
    }

    /// Where the password came from (`Secret.origin`: `file …`, `env …`, `inline`), so the
    /// route key tells two secrets from two places apart even before their digests do.
    public var credentialSource: String?

    /// Connections and route health are shared by messages whose targets have the same key:
    /// every host of the route, not the one a connection happens to use, and the credential.
    public var key: RouteKey {
        RouteKey(hosts: hosts, port: port, tlsMode: parameters.tlsMode, ehloName: parameters.ehloName, caFile: caFile,
                 credential: .of(parameters.credentials, source: credentialSource, oauth2: oauth2))
    }

    /// `host:port` of this connection's host.
    public var displayName: String { Self.endpoint(host, port) }

    /// The route as logs and `status` name it: every host, primary first.
    public var routeName: String {
        hosts.count == 1 ? displayName : hosts.map { Self.endpoint($0, port) }.joined(separator: ",")
    }

    /// The same route, one connection's host.
    public func connecting(to host: String) -> DeliveryTarget {
        var target = self
        target.host = host
        return target
    }

    static func endpoint(_ host: String, _ port: UInt16) -> String { "\(host):\(port)" }
}
