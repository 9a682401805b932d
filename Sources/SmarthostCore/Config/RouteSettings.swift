/// How the relay secures its connection to an upstream.
public enum TLSMode: String, Sendable, Hashable, CaseIterable {
    /// Plain connect, then STARTTLS (RFC 3207) before anything else; refuse if not offered.
    case starttls
    /// TLS from the first byte (RFC 8314 §3), the usual meaning of port 465.
    case implicit
    /// No TLS at all; credentials are then only sent with `allow_plaintext_auth: true`.
    case none
}

/// What to do with the message's `From:` header when the route has a `from` address.
public enum RewriteFromMode: String, Sendable, Hashable, CaseIterable {
    /// Add `From:` only when the message has none.
    case fill
    /// Always replace `From:`; Gmail-style servers refuse mail "from" other addresses.
    case replace
}

/// One upstream SMTP account: where to connect, how to secure it, whom to send as.
/// Values are resolved at load: `domain` has its default, `password` is read from its
/// file or variable, `timeoutMs` is in milliseconds.
public struct RouteSettings: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    public var tls: TLSMode
    /// EHLO name sent to this upstream (default: the relay's hostname).
    public var domain: String
    /// Longest wait for any one upstream reply, in milliseconds.
    public var timeoutMs: Int64
    /// nil = send anonymously.
    public var username: String?
    /// Present when `username` is, unless `missingCredential` says why not.
    public var password: Secret?
    /// The route names a secret that does not exist yet (a fresh install): what is missing
    /// and where to put it. Its mail is held (deferred), never sent without AUTH.
    public var missingCredential: String?
    /// Envelope sender (and `From:` address) for mail on this route.
    public var from: String?
    public var fromName: String?
    /// PEM bundle to verify this upstream with, instead of the system store; absolute path.
    public var caFile: String?
    public var rewriteFrom: RewriteFromMode
    public var allowPlaintextAuth: Bool
    /// AUTH with an OAuth2 bearer token instead of a password (never both).
    public var oauth2: OAuth2Settings?
    /// More hosts after `host` (`host: [a, b]`), tried in order when the ones before fail.
    public var fallbackHosts: [String] = []
    /// The provider's limits: `rate`, `connections`, `max_recipients_per_message`.
    public var limits = RouteLimits()
    /// `transport: graph` delivers through Microsoft Graph `sendMail` (issue 22) to
    /// `graphURL`; `host`/`port` are then its host and port, `caFile` verifies it.
    public var transport: UpstreamTransport = .smtp
    public var graphURL: String?

    /// 180 s, the timeout of the product's mail-settings pages.
    public static let defaultTimeoutMs: Int64 = 180_000

    public init(
        host: String, port: UInt16, tls: TLSMode, domain: String,
        timeoutMs: Int64 = RouteSettings.defaultTimeoutMs,
        username: String? = nil, password: Secret? = nil,
        from: String? = nil, fromName: String? = nil, caFile: String? = nil,
        rewriteFrom: RewriteFromMode = .fill, allowPlaintextAuth: Bool = false, oauth2: OAuth2Settings? = nil
    ) {
        self.oauth2 = oauth2
        self.host = host
        self.port = port
        self.tls = tls
        self.domain = domain
        self.timeoutMs = timeoutMs
        self.username = username
        self.password = password
        self.from = from
        self.fromName = fromName
        self.caFile = caFile
        self.rewriteFrom = rewriteFrom
        self.allowPlaintextAuth = allowPlaintextAuth
        self.missingCredential = nil
    }

    /// `host:port`, with brackets around an IPv6 literal; a Graph route's `graph_url`.
    public var endpoint: String { graphURL ?? Self.endpoint(host: host, port: port) }

    public static func endpoint(host: String, port: UInt16) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The TLS mode a YAML boolean means: `true` is STARTTLS, except on port 465 where
    /// nothing but implicit TLS works; `false` is no TLS.
    public static func tlsMode(enabled: Bool, port: UInt16) -> TLSMode {
        guard enabled else { return .none }
        return port == 465 ? .implicit : .starttls
    }
}

/// A host or org section's `use:` choice.
public enum RouteChoice: Sendable, Equatable {
    /// Host: the default route. Org: whatever the host level resolves to.
    case useDefault
    case custom(RouteSettings)
}

/// One organization of the `orgs:` section.
public struct OrgSetting: Sendable, Equatable {
    public var id: String
    public var route: RouteChoice
    /// Envelope-sender patterns (`*@acme.example`) that select this org when the message
    /// carries no org header. Allowed with either `use`.
    public var senders: [String]
    /// `notices.copy_to` for this org's messages (instead of the host level's).
    public var noticesCopyTo: String?
    /// `clients:` — the only clients that may submit mail going out as this org; nil: any.
    public var clients: [ClientRule]?

    public init(id: String, route: RouteChoice, senders: [String] = []) {
        self.id = id
        self.route = route
        self.senders = senders
    }
}
