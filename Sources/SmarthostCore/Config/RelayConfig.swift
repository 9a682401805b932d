#if canImport(Glibc)
import Glibc
#endif

/// The whole configuration of the relay (product.md §4), validated and resolved: defaults
/// filled in, sizes in bytes, durations in milliseconds, secrets read.
/// A value of this type is always a configuration the daemon can run with.
public struct RelayConfig: Sendable, Equatable {
    /// Banner and EHLO name; default: the system host name.
    public var hostname: String
    public var listen: [ListenAddress]
    /// Spool directory, as written (a relative path is relative to the working directory).
    public var spool: String
    /// Header that names a message's org; removed before relaying.
    public var orgHeader: String
    /// `org_header_trust:` — whether the header alone may choose the org.
    public var orgHeaderTrust = OrgHeaderTrust.any
    public var limits: Limits
    public var access: Access
    public var queue: Queue
    /// The preconfigured vendor route.
    public var defaultRoute: RouteSettings
    /// The host level: `use: default` or its own route.
    public var host: RouteChoice
    /// Orgs in file order: sender patterns are tried in this order.
    public var orgs: [OrgSetting] {
        didSet { orgIndex = Self.index(orgs) }
    }
    /// Position of each org id in `orgs`: a configuration may hold 10 000 orgs, and the
    /// route of every message and attempt is looked up by id.
    private var orgIndex: [String: Int] = [:]
    /// `notices:` — failure notices and delay warnings.
    public var notices = NoticeSettings()
    /// `aliases:` — local part (lower case) → addresses, applied to this host's recipients.
    public var aliases: [String: [String]] = [:]
    /// Domains besides `hostname` whose addresses are this host's (the system host name).
    public var otherLocalDomains: [String] = []
    /// How bare local parts are qualified and local recipients aliased at acceptance.
    public var addressing: LocalAddressing {
        LocalAddressing(hostname: hostname, otherLocalDomains: otherLocalDomains, aliases: aliases)
    }
    /// Where `/metrics` (Prometheus) is served; nil: off.
    public var metricsListen: ListenAddress?
    /// Legal but risky settings found at load, with their lines (`check-config` prints them).
    public var warnings: [ConfigIssue] = []

    public static let defaultListen = [
        ListenAddress(host: "127.0.0.1", port: 25, isIPv6: false),
        ListenAddress(host: "::1", port: 25, isIPv6: true),
    ]
    public static let defaultSpool = "/var/spool/smarthost"
    public static let defaultOrgHeader = "X-Smarthost-Org"

    public init(
        hostname: String, listen: [ListenAddress] = RelayConfig.defaultListen,
        spool: String = RelayConfig.defaultSpool, orgHeader: String = RelayConfig.defaultOrgHeader,
        limits: Limits = Limits(), access: Access = Access(), queue: Queue = Queue(),
        defaultRoute: RouteSettings, host: RouteChoice = .useDefault, orgs: [OrgSetting] = []
    ) {
        self.hostname = hostname
        self.listen = listen
        self.spool = spool
        self.orgHeader = orgHeader
        self.limits = limits
        self.access = access
        self.queue = queue
        self.defaultRoute = defaultRoute
        self.host = host
        self.orgs = orgs
        self.orgIndex = Self.index(orgs)
    }

    private static func index(_ orgs: [OrgSetting]) -> [String: Int] {
        Dictionary(orgs.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Routes that name a secret which does not exist yet, as `(where, what)`: e.g.
    /// `("default", "password_file sendgrid.secret: … does not exist (put it in …)")`.
    /// Their mail is held until the secret is there and the relay restarted or reloaded.
    public var missingCredentials: [(route: String, problem: String)] {
        var out: [(String, String)] = []
        if let problem = defaultRoute.missingCredential { out.append(("default", problem)) }
        if case .custom(let route) = host, let problem = route.missingCredential { out.append(("host", problem)) }
        for org in orgs {
            if case .custom(let route) = org.route, let problem = route.missingCredential { out.append(("org \(org.id)", problem)) }
        }
        return out
    }

    /// The org with this id, if the configuration has it.
    public func org(_ id: String) -> OrgSetting? {
        orgIndex[id].map { orgs[$0] }
    }

    /// `limits:` — what one client may do.
    public struct Limits: Sendable, Equatable {
        public var maxMessageSize: Int64 = 35 << 20
        public var maxRecipients: Int = 100
        public var maxConnections: Int = 1000
        /// Connections from one client at once (an IP address, or a uid on the Unix socket);
        /// 0: no limit of its own; nil (the key absent): `defaultConnectionsPerClient`.
        public var maxConnectionsPerClient: Int?
        /// One connection's whole life, checked between commands (never mid-DATA; see
        /// `defaultConnectionTimeMs`); 0: no bound.
        public var maxConnectionTimeMs: Int64 = Self.defaultConnectionTimeMs
        /// Each command line must be complete within this, counted from when the relay waits
        /// for it: a deadline, not an inactivity timer (a client dripping a byte at a time
        /// gets no longer than an idle one).
        public var idleTimeoutMs: Int64 = 5 * 60_000
        /// The whole message content must arrive within this, counted from the 354 reply.
        public var dataTimeoutMs: Int64 = 10 * 60_000
        /// Below this much free space in the spool, new mail is refused with a 452.
        public var minFreeSpace: Int64 = 100 << 20
        /// A bare LF in commands and content: normalized to CRLF (Postfix 3.9) or refused.
        public var bareLineFeed = BareLineFeedPolicy.normalize
        public init() {}

        /// The cap one client holds: what was set, or a tenth of `max_connections` but at
        /// least 10 (and never more than `max_connections`). A tenth: ten clients' worth of
        /// slots, so one local user holding its whole share (issue 19: 1 010 idle
        /// connections) leaves 90 % to everyone else; 100 of the default 1 000 is still more
        /// than a PHP-FPM or cron burst opens at once. The floor of 10: a relay set to
        /// `max_connections: 30` still lets one busy application send 10 messages in
        /// parallel. Every application on 127.0.0.1 is one client here: tenants that need
        /// shares of their own submit over the Unix socket, where each uid is one.
        public var connectionsPerClient: Int {
            if let set = maxConnectionsPerClient { return set }
            return Self.defaultConnectionsPerClient(maxConnections: maxConnections)
        }

        public static func defaultConnectionsPerClient(maxConnections: Int) -> Int {
            min(maxConnections, max(maxConnections / 10, 10))
        }

        /// Slots only Unix-socket clients may take when a Unix socket listens: a tenth of
        /// `max_connections` (at least 1). Every local user can open TCP connections from as
        /// many 127.x addresses as it likes, each a client of its own, so per-client caps
        /// alone let TCP fill the pool; a uid needs a real account. One pool with a reserve
        /// rather than two pools keeps `max_connections` the bound on descriptors and memory.
        public var unixReserve: Int { max(1, maxConnections / 10) }

        /// Ten minutes, bounding how long NOOP/RSET keep-alives hold a slot. Enforced only
        /// where the client waits for a command (a `421 4.4.2` in answer to the next command,
        /// or on its own when the wait runs past it), never during DATA: a max-size message
        /// sent at the slowest rate `data_timeout` allows (35 MiB in 10 minutes) finishes and
        /// gets its `250`. A client that keeps one connection for a stream of messages gets a
        /// `421` after ten minutes and reconnects (RFC 5321 §3.8: a 421 may come at any time).
        public static let defaultConnectionTimeMs: Int64 = 10 * 60_000
    }

    /// `access:` — which clients may connect at all.
    public struct Access: Sendable, Equatable {
        public var allow: [CIDRBlock] = [
            CIDRBlock(unchecked: [127, 0, 0, 0], prefixLength: 8),
            CIDRBlock(unchecked: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128),
        ]
        public init() {}
        public init(allow: [CIDRBlock]) { self.allow = allow }

        /// An IPv4 client, as a host-order integer (`a<<24 | b<<16 | c<<8 | d`).
        public func allows(ipv4: UInt32) -> Bool {
            allow.contains { $0.contains(ipv4: ipv4) }
        }

        /// An IPv6 client (16 network-order bytes); `::ffff:a.b.c.d` is tested as IPv4.
        public func allows(ipv6: [UInt8]) -> Bool {
            allow.contains { $0.contains(ipv6: ipv6) }
        }
    }

    /// `queue:` — retry policy.
    public struct Queue: Sendable, Equatable {
        /// First retry delay; doubles per attempt …
        public var retryMinMs: Int64 = 60_000
        /// … up to this.
        public var retryMaxMs: Int64 = 3_600_000
        /// Older than this, a message becomes a dead letter.
        public var maxAgeMs: Int64 = 5 * 86_400_000
        /// Parallel connections to one upstream (Postfix's per-destination concurrency):
        /// more lets 20 busy clients be relayed without queueing behind each other.
        public var connectionsPerRoute = 10
        public init() {}
    }
}

// MARK: - Loading

extension RelayConfig {
    /// Reads and validates the file at `path`. Relative `password_file` and `ca_file` paths
    /// resolve against the file's directory (or `$CREDENTIALS_DIRECTORY` for secrets).
    public static func load(path: String, environment: [String: String]) throws(ConfigErrors) -> RelayConfig {
        let text: String
        switch readTextFile(path) {
        case .success(let content): text = content
        case .failure(let reason):
            throw ConfigErrors(source: path, issues: [ConfigIssue(line: nil, keyPath: "", message: reason.text)])
        }
        var config = try parse(yaml: text, source: path, baseDirectory: directory(of: path), environment: environment)
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o004 != 0, config.hasInlinePassword {
            let lines = Schema.linesDefining("password", in: text) ?? []
            config.warnings.append(ConfigIssue(
                line: lines.first, keyPath: "password",
                message: "an inline password in a file every local user can read (mode \(String(info.st_mode & 0o777, radix: 8))); "
                    + "use password_file in /etc/smarthost/credentials/, or chmod o-r \(path)"))
        }
        return config
    }

    /// A route with `password:` written in the file itself.
    var hasInlinePassword: Bool {
        var routes = [defaultRoute]
        if case .custom(let route) = host { routes.append(route) }
        for org in orgs { if case .custom(let route) = org.route { routes.append(route) } }
        return routes.contains { $0.password?.origin == "inline" }
    }

    /// The spool directory named by the file at `path` (or the default), reading nothing
    /// else: no secret is resolved, no other key validated.
    public static func loadSpoolPath(path: String) throws(ConfigErrors) -> String {
        let text: String
        switch readTextFile(path) {
        case .success(let content): text = content
        case .failure(let reason):
            throw ConfigErrors(source: path, issues: [ConfigIssue(line: nil, keyPath: "", message: reason.text)])
        }
        var schema = Schema(baseDirectory: directory(of: path), environment: [:], systemHostname: "localhost")
        guard let spool = schema.decodeSpoolOnly(yaml: text), schema.reader.issues.isEmpty else {
            throw ConfigErrors(source: path, issues: schema.reader.issues)
        }
        return spool
    }

    /// Validates YAML text; `source` names it in errors.
    public static func parse(
        yaml: String, source: String, baseDirectory: String, environment: [String: String]
    ) throws(ConfigErrors) -> RelayConfig {
        try parse(yaml: yaml, source: source, baseDirectory: baseDirectory,
                  environment: environment, systemHostname: systemHostname())
    }

    /// As above with the system host name given, so tests do not depend on the machine.
    static func parse(
        yaml: String, source: String, baseDirectory: String, environment: [String: String],
        systemHostname: String
    ) throws(ConfigErrors) -> RelayConfig {
        var schema = Schema(baseDirectory: baseDirectory, environment: environment, systemHostname: systemHostname)
        let config = schema.decode(yaml: yaml)
        guard var config, schema.reader.issues.isEmpty else {
            throw ConfigErrors(source: source, issues: schema.reader.issues)
        }
        config.warnings = schema.reader.warnings
        return config
    }

    /// `gethostname(2)`; "localhost" if even that fails, which only a broken system does.
    static func systemHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// `a/b/c.yaml` → `a/b`, `c.yaml` → `.`, `/c.yaml` → `/`.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `base` + `path` unless `path` is absolute.
    static func resolve(_ path: String, under base: String) -> String {
        path.hasPrefix("/") || base.isEmpty ? path : (base.hasSuffix("/") ? base + path : base + "/" + path)
    }

    struct ReadFailure: Error { var text: String }

    static func readText(_ path: String) -> Result<String, ReadFailure> { readTextFile(path) }

    private static func readTextFile(_ path: String) -> Result<String, ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(text: "cannot read \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return .failure(ReadFailure(text: "cannot read \(path): \(String(cString: strerror(errno)))")) }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        return .success(String(decoding: out, as: UTF8.self))
    }
}
