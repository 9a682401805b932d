#if canImport(Glibc)
import Glibc
#endif

extension RelayConfig.Schema {
    typealias Section = RelayConfig.Section
    typealias Field = RelayConfig.Field

    /// What every route of one file shares.
    struct RouteContext {
        /// The relay's hostname: a route's default EHLO `domain`.
        let hostname: String
    }

    static let routeKeys = ["host", "port", "tls", "domain", "timeout", "username", "password", "password_file",
                            "password_env", "from", "from_name", "ca_file", "rewrite_from", "allow_plaintext_auth", "oauth2"]
        + routeLimitKeys + graphRouteKeys
    static let passwordKeys = ["password", "password_file", "password_env"]

    // MARK: The three levels

    /// `default:` is always a custom route; it has no `use`.
    mutating func decodeDefaultRoute(_ top: Section, _ context: RouteContext) -> RouteSettings? {
        guard let field = top.field("default") else {
            reader.missing(top, "default", "the preconfigured vendor route is required")
            return nil
        }
        guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: Self.routeKeys)
        else { return nil }
        return decodeRoute(section, context)
    }

    mutating func decodeHost(_ field: Field, _ context: RouteContext) -> RouteChoice? {
        guard let section = reader.section(field.node, path: field.path, line: field.keyLine,
                                           allowed: ["use"] + Self.routeKeys) else { return nil }
        return decodeChoice(section, context)
    }

    /// Orgs keep their file order: the first org whose sender pattern matches wins.
    mutating func decodeOrgs(_ field: Field, _ context: RouteContext) -> [OrgSetting] {
        guard let section = reader.openSection(field.node, path: field.path, line: field.keyLine) else { return [] }
        return section.fields.compactMap { field in
            let org = decodeOrg(field, context)
            if let org { orgPlaces[org.id] = (reader.currentFile, field.keyLine, field.path) }
            return org
        }
    }

    /// First match wins: an org whose every `senders` pattern is covered by an earlier org's
    /// is never chosen by its sender, which is never what the operator meant.
    mutating func warnShadowedSenders(_ orgs: [OrgSetting]) {
        // A pattern's text, taken as an address, is matched by every pattern that covers it
        // (`SenderPattern.covers`); the classifier's first match tells whether an earlier org
        // has one, through its indexes rather than against every pattern before it.
        let classifier = OrgClassifier(orgHeader: "", orgs: orgs)
        for (index, org) in orgs.enumerated() where !org.senders.isEmpty {
            let covering = org.senders.map { pattern -> OrgSetting? in
                guard let rule = classifier.firstRule(matching: pattern), rule.orgIndex < index else { return nil }
                return orgs[rule.orgIndex]
            }
            guard covering.allSatisfy({ $0 != nil }), let place = orgPlaces[org.id] else { continue }
            let names = Set(covering.compactMap { $0?.id }).sorted().joined(separator: ", ")
            reader.currentFile = place.file
            reader.warn(place.line, place.path + ".senders",
                        "every pattern is matched first by org \(names) (earlier in the configuration): no sender ever selects \(org.id)")
            reader.currentFile = nil
        }
    }

    private mutating func decodeOrg(_ field: Field, _ context: RouteContext) -> OrgSetting? {
        // The id goes into logs and spool records as `org=<id>`: no spaces or controls.
        if field.key.isEmpty || !field.key.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value != 127 }) {
            reader.report(field.keyLine, field.path, "an org id must be non-empty, without spaces or control characters")
        }
        guard let section = reader.section(field.node, path: field.path, line: field.keyLine,
                                           allowed: ["use", "senders", "clients", "notices"] + Self.routeKeys) else { return nil }
        let senders = decodeSenders(section)
        let noticesCopyTo = decodeOrgNotices(section)
        let clients = decodeOrgClients(section, org: field.key)
        guard let route = decodeChoice(section, context) else { return nil }
        var org = OrgSetting(id: field.key, route: route, senders: senders)
        org.noticesCopyTo = noticesCopyTo
        org.clients = clients
        return org
    }

    /// `use: default|custom`. Without `use`, a section with route keys is custom. With
    /// `use: default`, route keys are refused: settings that are silently unused mislead.
    private mutating func decodeChoice(_ section: Section, _ context: RouteContext) -> RouteChoice? {
        var custom = section.fields.contains { Self.routeKeys.contains($0.key) }
        if let field = section.field("use"), let text = reader.string(field) {
            guard text == "default" || text == "custom" else {
                reader.report(field.line, field.path, "\(text) is not one of: default, custom")
                return nil
            }
            custom = text == "custom"
        }
        guard custom else {
            for field in section.fields where Self.routeKeys.contains(field.key) {
                reader.report(field.keyLine, field.path, "only allowed with use: custom")
            }
            return .useDefault
        }
        return decodeRoute(section, context).map(RouteChoice.custom)
    }

    private mutating func decodeSenders(_ section: Section) -> [String] {
        guard let field = section.field("senders"), let items = reader.strings(field) else { return [] }
        return items.compactMap { item in
            let parts = item.text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
                  !item.text.contains(where: { $0.isWhitespace }) else {
                reader.report(item.line, item.path,
                              "\(item.text) is not a sender pattern (e.g. *@acme.example, alerts@globex.example)")
                return nil
            }
            return item.text
        }
    }

    // MARK: One route

    /// A custom route: `host` and `port` are required, the rest have defaults.
    private mutating func decodeRoute(_ section: Section, _ context: RouteContext) -> RouteSettings? {
        if decodeTransport(section) == .graph { return decodeGraphRoute(section, context) }
        let hosts = decodeUpstreamHosts(section)
        let host = hosts?.first
        var port: UInt16?
        if let field = section.field("port") { port = reader.port(field) } else {
            reader.missing(section, "port", "required for a custom route")
        }
        let tls = decodeTLS(section, port: port ?? 0)
        warnPortMismatch(section, port: port, tls: tls)
        let auth = decodeAuth(section, tls: tls)
        // The options are checked even when host or port is bad: all errors in one run.
        var route = RouteSettings(host: host ?? "", port: port ?? 0, tls: tls, domain: context.hostname,
                                  username: auth.username, password: auth.password)
        route.missingCredential = auth.missing
        route.oauth2 = auth.oauth2
        route.fallbackHosts = Array((hosts ?? []).dropFirst())
        route.limits = decodeLimits(section)
        decodeOptions(section, into: &route)
        return host == nil || port == nil ? nil : route
    }

    /// `starttls|implicit|none`, or a YAML boolean (see `RouteSettings.tlsMode`). Absent
    /// means TLS on: a relay carrying password-reset mail should not fall back to clear text.
    private mutating func decodeTLS(_ section: Section, port: UInt16) -> TLSMode {
        let secure = RouteSettings.tlsMode(enabled: true, port: port)
        guard let field = section.field("tls"), let text = reader.string(field) else { return secure }
        switch text.lowercased() {
        case "true": return secure
        case "false": return .none
        default:
            if let mode = TLSMode(rawValue: text) { return mode }
            reader.report(field.line, field.path, "\(text) is not one of: starttls, implicit, none, true, false")
            return secure
        }
    }

    /// 465 speaks TLS from the first byte (RFC 8314), 587 and 25 plain text first: the other
    /// mode hangs until the timeout, the classic mix-up of the product's troubleshooting page.
    private mutating func warnPortMismatch(_ section: Section, port: UInt16?, tls: TLSMode) {
        guard let port, let field = section.field("tls") ?? section.field("port") else { return }
        switch (port, tls) {
        case (465, .starttls):
            reader.warn(field.line, field.path, "port 465 is implicit TLS (SMTPS); tls: starttls there waits for a greeting that never comes (use tls: implicit)")
        case (587, .implicit), (25, .implicit):
            reader.warn(field.line, field.path, "port \(port) expects STARTTLS; tls: implicit there fails the handshake (use tls: starttls)")
        default:
            break
        }
    }

    /// The optional keys that need no cross-checks beyond `tls`.
    mutating func decodeOptions(_ section: Section, into route: inout RouteSettings) {
        if let f = section.field("domain"), let text = reader.string(f) {
            if RelayConfig.Schema.isHostname(text) { route.domain = text } else {
                reader.report(f.line, f.path, "\(text) is not a domain name")
            }
        }
        if let f = section.field("timeout"), let ms = reader.duration(f, bareUnitMilliseconds: 1) {
            route.timeoutMs = ms
            // The product's pages give 180000 (ms); "30" was meant as seconds and would
            // time out every upstream before its greeting.
            if ms < 1000, let text = reader.string(f), Int(text) != nil {
                reader.warn(f.line, f.path, "\(text) is \(text) milliseconds (a bare number is milliseconds here); write \(text)s for seconds")
            }
        }
        route.from = decodeFrom(section)
        route.fromName = decodeFromName(section)
        if let f = section.field("rewrite_from"), let mode = reader.choice(f, RewriteFromMode.self) { route.rewriteFrom = mode }
        route.caFile = decodeCAFile(section, tls: route.tls)
        route.allowPlaintextAuth = decodePlaintextAuth(section, tls: route.tls)
        if route.username != nil, route.tls == .none, !route.allowPlaintextAuth, let f = section.field("username") {
            reader.report(f.line, f.path, "with tls: none the password would be sent in clear; "
                          + "use TLS, or set allow_plaintext_auth: true")
        }
    }

    // MARK: Sender

    private mutating func decodeFrom(_ section: Section) -> String? {
        guard let field = section.field("from"), let text = reader.string(field) else { return nil }
        guard Self.isAddress(text) else {
            reader.report(field.line, field.path, "\(text) is not a mail address (user@domain; the name goes in from_name)")
            return nil
        }
        return text
    }

    /// A display name goes into a header: a line break in it would inject header lines.
    private mutating func decodeFromName(_ section: Section) -> String? {
        guard let field = section.field("from_name"), let text = reader.string(field) else { return nil }
        guard !text.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
            reader.report(field.line, field.path, "must not contain line breaks or control characters")
            return nil
        }
        return text
    }

    /// `user@domain` (RFC 5321 §4.1.2 dot-atom local part, UTF-8 allowed for SMTPUTF8) with a
    /// host name or address-literal domain. Quoted local parts are refused: no real account has one.
    static func isAddress(_ text: String) -> Bool {
        guard let at = text.lastIndex(of: "@") else { return false }
        let local = text[..<at], domain = String(text[text.index(after: at)...])
        let special = Set("!#$%&'*+-/=?^_`{|}~.")
        guard !local.isEmpty, local.utf8.count <= 64, local.first != ".", local.last != ".", !local.contains(".."),
              local.allSatisfy({ !$0.isASCII || $0.isLetter || $0.isNumber || special.contains($0) }) else {
            return false
        }
        if domain.hasPrefix("["), domain.hasSuffix("]") {
            let literal = String(domain.dropFirst().dropLast())
            return CIDRBlock.ipv4Bytes(literal) != nil
                || (literal.lowercased().hasPrefix("ipv6:") && CIDRBlock.ipv6Bytes(String(literal.dropFirst(5))) != nil)
        }
        return domain.contains(".") ? RelayConfig.Schema.isHostname(domain) : false
    }

    // MARK: TLS options

    private mutating func decodeCAFile(_ section: Section, tls: TLSMode) -> String? {
        guard let field = section.field("ca_file"), let text = reader.string(field) else { return nil }
        guard tls != .none else {
            reader.report(field.line, field.path, "a CA file needs TLS, but tls is none")
            return nil
        }
        let path = RelayConfig.resolve(text, under: baseDirectory)
        guard access(path, R_OK) == 0 else {
            reader.report(field.line, field.path, "cannot read \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        return path
    }

    private mutating func decodePlaintextAuth(_ section: Section, tls: TLSMode) -> Bool {
        guard let field = section.field("allow_plaintext_auth"), let allowed = reader.bool(field) else { return false }
        if allowed && tls != .none {
            reader.report(field.line, field.path, "true is only allowed with tls: none (with TLS it is never needed)")
            return false
        }
        return allowed
    }
}
