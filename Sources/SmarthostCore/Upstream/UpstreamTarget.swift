/// How a connection carries a message to its upstream. The queue never looks at it: the
/// driver's one factory (`UpstreamConnectionFactory`) picks the connection type by it, and
/// every type behind it speaks the same seam (`UpstreamConnection`).
public enum UpstreamTransport: String, Sendable, Hashable, CaseIterable {
    /// SMTP submission (`UpstreamSession` driven by `DeliveryConnection`).
    case smtp
    /// An HTTPS mail API (Microsoft Graph `sendMail`), issue 22: `Upstream/Graph/`.
    case graph
}

/// Everything one connection needs to reach one upstream host: where (host, port), how
/// (transport, TLS and its CA bundle, the EHLO name, credentials, OAuth2), and how long each
/// step may take. Nothing about queues: fallback hosts, limits and route keys are the
/// delivery side's (`DeliveryTarget`), which picks the host of each connection.
public struct UpstreamTarget: Sendable {
    public var transport: UpstreamTransport = .smtp
    /// The one host this connection goes to.
    public var host: String
    public var port: UInt16
    public var caFile: String?
    public var timeoutMilliseconds: Int64
    /// A shorter wait for the greeting than for other replies: `smarthost test` uses it to
    /// tell a silent implicit-TLS port from a slow server quickly. nil: `timeoutMilliseconds`.
    public var greetingTimeoutMilliseconds: Int64?
    public var parameters: UpstreamParameters
    /// Set on an OAuth2 route: the token comes from here, before the connection is made.
    public var oauth2: OAuth2Settings?
    /// `transport: graph`: the API's base URL (`graph_url`); `host`/`port` are its host and
    /// port, and `caFile` verifies it. nil for SMTP.
    public var graphURL: String?

    public init(host: String, port: UInt16, caFile: String?, timeoutMilliseconds: Int64,
                parameters: UpstreamParameters, oauth2: OAuth2Settings? = nil, transport: UpstreamTransport = .smtp) {
        self.transport = transport
        self.host = host
        self.port = port
        self.caFile = caFile
        self.timeoutMilliseconds = timeoutMilliseconds
        self.parameters = parameters
        self.oauth2 = oauth2
    }

    /// The connection authenticates (AUTH with a password or a bearer token).
    public var authenticates: Bool { parameters.credentials != nil || oauth2 != nil }

    /// `host:port` of this connection's host; a Graph route's base URL.
    public var displayName: String { graphURL ?? Self.endpoint(host, port) }

    /// The same upstream, another host (a route's fallback).
    public func connecting(to host: String) -> UpstreamTarget {
        var target = self
        target.host = host
        return target
    }

    static func endpoint(_ host: String, _ port: UInt16) -> String { "\(host):\(port)" }
}
