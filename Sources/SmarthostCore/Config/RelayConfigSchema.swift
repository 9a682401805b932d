extension RelayConfig {
    /// The schema of product.md §4: which keys exist, their types, defaults and rules.
    /// Every problem is recorded in `reader` and decoding goes on, so one run reports all.
    struct Schema {
        var reader = NodeReader()
        /// Where each org was defined (included file, line, key path), for warnings about it
        /// that can only be made once every org is known.
        var orgPlaces: [String: (file: String?, line: Int?, path: String)] = [:]
        /// Set while an `oauth2:` block is read when one of its key files does not exist yet.
        var missingCredential: String?
        let baseDirectory: String
        let environment: [String: String]
        let systemHostname: String

        static let topKeys = ["hostname", "listen", "spool", "org_header", "limits", "access", "queue",
                              "default", "host", "orgs", "include", "metrics", "notices",
                              "org_header_trust", "aliases"]
        static let limitKeys = ["max_message_size", "max_recipients", "max_connections", "max_connections_per_client",
                                "max_connection_time", "idle_timeout",
                                "data_timeout", "min_free_space", "bare_lf"]
        static let accessKeys = ["allow"]
        static let queueKeys = ["retry_min", "retry_max", "max_age", "connections_per_route"]

        init(baseDirectory: String, environment: [String: String], systemHostname: String) {
            self.baseDirectory = baseDirectory
            self.environment = environment
            self.systemHostname = systemHostname
        }

        /// The configuration, or nil when a required part is missing (the reasons are in `reader`).
        mutating func decode(yaml: String) -> RelayConfig? {
            guard let root = compose(yaml),
                  let top = reader.section(root, path: "", line: nil, allowed: Self.topKeys) else { return nil }
            let hostname = decodeHostname(top)
            var listen = RelayConfig.defaultListen
            if let field = top.field("listen") { listen = decodeListen(field) }
            var limits = Limits(), access = Access(), queue = Queue()
            if let field = top.field("limits") { limits = decodeLimits(field) }
            if let field = top.field("access") { access = decodeAccess(field) }
            if let field = top.field("queue") { queue = decodeQueue(field) }
            warnListenAccess(listen, access, top)
            let context = RouteContext(hostname: hostname)
            let defaultRoute = decodeDefaultRoute(top, context)
            let host = top.field("host").map { decodeHost($0, context) } ?? .useDefault
            var orgs = top.field("orgs").map { decodeOrgs($0, context) } ?? []
            if let field = top.field("include") { orgs += decodeIncludes(field, context, after: orgs) }
            warnShadowedSenders(orgs)
            let spool = decodeSpool(top)
            let orgHeader = decodeOrgHeader(top)
            let metricsListen = top.field("metrics").flatMap { decodeMetrics($0) }
            let notices = top.field("notices").map { decodeNotices($0) } ?? NoticeSettings()
            guard let defaultRoute else { return nil }
            var config = RelayConfig(
                hostname: hostname, listen: listen, spool: spool, orgHeader: orgHeader,
                limits: limits, access: access, queue: queue,
                defaultRoute: defaultRoute, host: host ?? .useDefault, orgs: orgs)
            config.metricsListen = metricsListen
            config.notices = notices
            config.orgHeaderTrust = decodeOrgHeaderTrust(top)
            config.aliases = top.field("aliases").map { decodeAliases($0, hostname: hostname) } ?? [:]
            config.otherLocalDomains = [systemHostname]
            warnClaimableOrgs(orgs, trust: config.orgHeaderTrust, orgHeader: orgHeader, top)
            return config
        }

        /// `metrics: { listen: "127.0.0.1:9325" }`: where `/metrics` is served; off when absent.
        private mutating func decodeMetrics(_ field: Field) -> ListenAddress? {
            guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: ["listen"]),
                  let listen = section.field("listen"), let text = reader.string(listen) else { return nil }
            guard let address = ListenAddress.parse(text) else {
                reader.report(listen.line, listen.path, "\(text) is not an address:port (e.g. 127.0.0.1:9325, [::1]:9325)")
                return nil
            }
            return address
        }

        /// Only the `spool:` key, for the queue tools: they must work where the rest of the
        /// file does not (a secret only the service can read, a route being edited).
        mutating func decodeSpoolOnly(yaml: String) -> String? {
            guard let root = compose(yaml),
                  let top = reader.openSection(root, path: "", line: nil) else { return nil }
            return decodeSpool(top)
        }

        /// A listener on a non-loopback address is reachable from the network: with an
        /// `allow` that admits everyone it is an open relay (anyone's mail through our upstream
        /// credentials), and one no allowed client can reach is most likely a typo.
        private mutating func warnListenAccess(_ listen: [ListenAddress], _ access: Access, _ top: Section) {
            let field = top.field("listen") ?? top.field("access")
            let everyone = access.allow.contains { $0.prefixLength == 0 }
            for address in listen where !Self.isLoopback(address) {
                if everyone {
                    let allow = top.field("access")
                    reader.warn(allow?.line ?? field?.line, "access.allow",
                                "listener \(address) is reachable from the network and allow admits every address: an open relay for our upstream credentials")
                } else if !Self.isWildcard(address), !Self.allows(access, address) {
                    reader.warn(field?.line, "listen", "listener \(address) is not on a network that access.allow admits: clients reaching it will be refused (554 5.7.1)")
                }
            }
        }

        static func isLoopback(_ address: ListenAddress) -> Bool {
            // A Unix socket is reachable from this host only.
            if address.unixPath != nil { return true }
            return ClientIdentity.isLoopback(address.addressBytes)
        }

        static func isWildcard(_ address: ListenAddress) -> Bool {
            address.addressBytes.allSatisfy { $0 == 0 }
        }

        /// The listener's own address stands for the clients of its network here: a client
        /// reaching 10.0.0.5 comes from 10.0.0.0/x, which an allow list for it would cover.
        static func allows(_ access: Access, _ address: ListenAddress) -> Bool {
            let bytes = address.addressBytes
            if address.isIPv6 { return access.allows(ipv6: bytes) }
            return access.allows(ipv4: bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }

        /// The YAML tree; a syntax error becomes an issue at its line.
        mutating func compose(_ yaml: String) -> Node? {
            do {
                return try YAMLParser.compose(yaml) ?? Node("", .implicit, .plain)
            } catch {
                reader.report(error.line, "", error.message)
            }
            return nil
        }

        /// The lines (1-based) where `key:` starts a mapping entry, at the indentation of its
        /// first occurrence.
        static func linesDefining(_ key: String, in yaml: String) -> [Int]? {
            var found: [(line: Int, indent: Int)] = []
            for (index, line) in yaml.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let indent = line.prefix { $0 == " " }.count
                let rest = line.dropFirst(indent)
                for form in [key + ":", "\"\(key)\":", "'\(key)':"] where rest.hasPrefix(form) {
                    found.append((index + 1, indent))
                }
            }
            guard let first = found.first else { return nil }
            return found.filter { $0.indent == first.indent }.map(\.line)
        }

        // MARK: Top-level scalars

        private mutating func decodeHostname(_ top: Section) -> String {
            guard let field = top.field("hostname"), let text = reader.string(field) else { return systemHostname }
            guard Self.isHostname(text) else {
                reader.report(field.line, field.path, "\(text) is not a host name")
                return systemHostname
            }
            return text
        }

        private mutating func decodeListen(_ field: Field) -> [ListenAddress] {
            guard let items = reader.strings(field) else { return RelayConfig.defaultListen }
            return items.compactMap { item in
                guard let address = ListenAddress.parseListener(item.text) else {
                    reader.report(item.line, item.path, "\(item.text) is not an address:port (e.g. 127.0.0.1:25 or [::1]:25) "
                                  + "or unix:/absolute/path (at most \(ListenAddress.maxUnixPathLength) bytes)")
                    return nil
                }
                return address
            }
        }

        private mutating func decodeSpool(_ top: Section) -> String {
            guard let field = top.field("spool") else { return RelayConfig.defaultSpool }
            return reader.string(field) ?? RelayConfig.defaultSpool
        }

        /// A header field name is printable ASCII without a colon (RFC 5322 §3.6.8).
        private mutating func decodeOrgHeader(_ top: Section) -> String {
            guard let field = top.field("org_header"), let text = reader.string(field) else {
                return RelayConfig.defaultOrgHeader
            }
            guard text.utf8.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }) else {
                reader.report(field.line, field.path, "\(text) is not a header field name")
                return RelayConfig.defaultOrgHeader
            }
            return text
        }

        // MARK: Sections

        private mutating func decodeLimits(_ field: Field) -> Limits {
            var limits = Limits()
            guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: Self.limitKeys)
            else { return limits }
            let counts: Int64 = 1_000_000_000
            if let f = section.field("max_message_size"), let v = reader.size(f) { limits.maxMessageSize = v }
            if let f = section.field("max_recipients"), let v = reader.integer(f, in: 1...counts) { limits.maxRecipients = Int(v) }
            if let f = section.field("max_connections"), let v = reader.integer(f, in: 1...counts) { limits.maxConnections = Int(v) }
            if let f = section.field("max_connections_per_client"), let v = reader.integer(f, in: 0...counts) {
                limits.maxConnectionsPerClient = Int(v)
            }
            if let f = section.field("max_connection_time") {
                // 0 turns the bound off, as for max_connections_per_client; any other value is a duration.
                if case .scalar(let scalar) = f.node, scalar.string == "0" { limits.maxConnectionTimeMs = 0 }
                else if let v = reader.duration(f) { limits.maxConnectionTimeMs = v }
            }
            if let f = section.field("idle_timeout"), let v = reader.duration(f) { limits.idleTimeoutMs = v }
            if let f = section.field("data_timeout"), let v = reader.duration(f) { limits.dataTimeoutMs = v }
            if let f = section.field("min_free_space"), let v = reader.size(f) { limits.minFreeSpace = v }
            if let f = section.field("bare_lf"), let v = reader.choice(f, BareLineFeedPolicy.self) { limits.bareLineFeed = v }
            return limits
        }

        private mutating func decodeAccess(_ field: Field) -> Access {
            guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: Self.accessKeys),
                  let allowField = section.field("allow"), let items = reader.strings(allowField) else { return Access() }
            let blocks: [CIDRBlock] = items.compactMap { item in
                switch CIDRBlock.parse(item.text) {
                case .success(let block): return block
                case .failure(let why):
                    reader.report(item.line, item.path, "\(item.text) \(why)")
                    return nil
                }
            }
            return Access(allow: blocks)
        }

        private mutating func decodeQueue(_ field: Field) -> Queue {
            var queue = Queue()
            guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: Self.queueKeys)
            else { return queue }
            if let f = section.field("retry_min"), let v = reader.duration(f) { queue.retryMinMs = v }
            if let f = section.field("retry_max"), let v = reader.duration(f) { queue.retryMaxMs = v }
            if let f = section.field("max_age"), let v = reader.duration(f) { queue.maxAgeMs = v }
            if let f = section.field("connections_per_route"), let v = reader.integer(f, in: 1...1000) {
                queue.connectionsPerRoute = Int(v)
            }
            if queue.retryMinMs > queue.retryMaxMs {
                let f = section.field("retry_max") ?? section.field("retry_min")
                reader.report(f?.line ?? section.line, section.child("retry_max"),
                              "must not be shorter than retry_min (\(Units.formatMilliseconds(queue.retryMinMs)))")
            }
            return queue
        }

        // MARK: Syntax

        /// RFC 1123 host name: dot-separated labels of letters, digits and hyphens
        /// (underscores are tolerated: internal names have them).
        static func isHostname(_ text: String) -> Bool {
            guard !text.isEmpty, text.utf8.count <= 253 else { return false }
            let labels = text.split(separator: ".", omittingEmptySubsequences: false)
            return labels.allSatisfy { label in
                (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
            }
        }
    }
}
