/// Everything needed to reach one upstream, taken from a resolved route.
public struct DeliveryTarget: Sendable {
    public var host: String
    public var port: UInt16
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

    /// Connections are shared by messages whose targets have the same key.
    public var key: String {
        "\(host):\(port) tls=\(parameters.tlsMode.rawValue) user=\(parameters.credentials?.username ?? "-") ehlo=\(parameters.ehloName) ca=\(caFile ?? "-")"
            + (oauth2.map { " oauth2=\($0.cacheKey) \($0.mechanism.rawValue)" } ?? "")
    }

    public var displayName: String { "\(host):\(port)" }
}
