/// Which credential a route's connections authenticate with. Two targets share pooled
/// connections and route health (up/down, failed hosts, pace) only when this is equal too:
/// an SMTP session authenticated with one org's key must never carry another org's mail,
/// and one org's revoked key must not hold another org's mail (issue 19). SendGrid and
/// Mailgun give every customer the same username (`apikey`), so the username alone tells
/// nothing apart: the secret's source and a digest of its value do.
public enum CredentialIdentity: Hashable, Sendable, CustomStringConvertible {
    /// No AUTH.
    case none
    /// `username` with a password or API key read from `source` (`file /etc/…`, `env NAME`,
    /// `inline`, as `Secret.origin` names it).
    case password(username: String, source: String, digest: SecretDigest)
    /// A bearer token: the token cache's key (provider, token URL, client, scope, subject)
    /// and the mailbox it authenticates as, with the SASL mechanism.
    case oauth2(username: String, tokenCacheKey: String, mechanism: String)

    /// Safe to log: the username and where the secret came from, never the value or its digest.
    public var description: String {
        switch self {
        case .none: return "no auth"
        case .password(let username, let source, _): return "user \(username) (password from \(source))"
        case .oauth2(let username, _, let mechanism): return "user \(username) (oauth2 \(mechanism))"
        }
    }

    /// The credential a target authenticates with. `source`: the secret's origin, when known.
    static func of(_ credentials: UpstreamCredentials?, source: String?, oauth2: OAuth2Settings?) -> CredentialIdentity {
        guard let credentials else { return .none }
        if let oauth2 {
            return .oauth2(username: credentials.username, tokenCacheKey: oauth2.cacheKey, mechanism: oauth2.mechanism.rawValue)
        }
        return .password(username: credentials.username, source: source ?? "-",
                         digest: SecretDigest(of: credentials.password))
    }

    /// A total order for deterministic iteration; compares digests, shows none.
    fileprivate var orderText: String {
        switch self {
        case .none: return "0"
        case .password(let username, let source, let digest): return "1 \(username) \(source) \(digest.hex)"
        case .oauth2(let username, let key, let mechanism): return "2 \(username) \(key) \(mechanism)"
        }
    }
}

/// SHA-256 of a secret's value: equal secrets give equal digests, and the digest neither
/// prints nor reflects (`description`, `debugDescription` and `Mirror` show no byte of it),
/// so a key that holds it can be logged or dumped by accident without giving anything away.
public struct SecretDigest: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable {
    private let bytes: [UInt8]

    init(of value: String) {
        bytes = SHA256Digest.digest(value.utf8)
    }

    public var description: String { "sha256:********" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    /// For ordering keys only; never shown.
    fileprivate var hex: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// What pooled connections, route health, failed hosts and pace are keyed by: every host
/// of the route (not the one a connection happens to use), the port, TLS, our EHLO name,
/// the CA bundle and the credential. Logs, `status` and metrics name a route by
/// `DeliveryTarget.routeName` (host list:port), never by this key.
public struct RouteKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var hosts: [String]
    public var port: UInt16
    public var tlsMode: UpstreamTLSMode
    public var ehloName: String
    public var caFile: String?
    public var credential: CredentialIdentity
    /// A Graph route's base URL (nil for SMTP): with the mailbox and the token's credential
    /// in `credential`, two tenants on one `graph_url` never share a route.
    public var graphURL: String?

    public init(hosts: [String], port: UInt16, tlsMode: UpstreamTLSMode, ehloName: String, caFile: String?,
                credential: CredentialIdentity, graphURL: String? = nil) {
        self.graphURL = graphURL
        self.hosts = hosts
        self.port = port
        self.tlsMode = tlsMode
        self.ehloName = ehloName
        self.caFile = caFile
        self.credential = credential
    }

    /// Safe to log (the credential by username and source only).
    public var description: String {
        (graphURL.map { "graph=\($0) " } ?? "")
            + "\(hosts.joined(separator: ",")):\(port) tls=\(tlsMode.rawValue) ehlo=\(ehloName) ca=\(caFile ?? "-") \(credential)"
    }

    public static func < (a: RouteKey, b: RouteKey) -> Bool {
        a.orderText < b.orderText
    }

    private var orderText: String {
        "\(graphURL ?? "-") \(hosts.joined(separator: ",")):\(port) \(tlsMode.rawValue) \(ehloName) \(caFile ?? "-") \(credential.orderText)"
    }
}
