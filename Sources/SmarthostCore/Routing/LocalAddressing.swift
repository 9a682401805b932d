/// What system mail needs before it can leave the machine: an upstream has no local users,
/// so a bare local part (`root`, cron's `From: root (Cron Daemon)`) is qualified with the
/// configured `hostname:` (Postfix's `append_at_myorigin` with `myorigin = $myhostname`),
/// and a recipient on this host (`root`, `root@<hostname>`) is replaced by what `aliases:`
/// names for it, as `/etc/aliases` would (Postfix does both in cleanup(8), at acceptance,
/// so the spool holds the rewritten envelope and every route sees the same one).
///
/// Choices a production relay has to make, and ours:
/// - **Unknown local parts** go out qualified (`www-data` → `www-data@<hostname>`), as
///   Postfix's `virtual_alias_maps` leave an address they do not match: the relay has no
///   mailboxes to refuse for, and refusing would lose cron's mail for a user nobody aliased.
/// - **Loops** cannot happen at run time: `RelayConfig` refuses an `aliases:` map with a
///   cycle (`a: b`, `b: a`), naming it. An alias naming itself (`root: [root, ops@x]`) keeps
///   the address, as in `/etc/aliases`: `root@<hostname>` goes out beside `ops@x`.
/// - **Only the envelope is aliased**; headers are only qualified (aliases never show in
///   `To:`, as with sendmail and Postfix).
/// Pure: strings in, strings out.
public struct LocalAddressing: Sendable, Equatable {
    /// The domain a bare local part gets: the configured `hostname:`.
    public var hostname: String
    /// Domains whose addresses are this host's own, lower-cased: `hostname`, the system
    /// host name and `localhost` (Postfix's default `mydestination`).
    public var localDomains: Set<String>
    /// Local part (lower-cased, as `/etc/aliases` keys are) → its addresses, as written.
    public var aliases: [String: [String]]

    public init(hostname: String, otherLocalDomains: [String] = [], aliases: [String: [String]] = [:]) {
        self.hostname = hostname
        self.localDomains = Set(([hostname, "localhost"] + otherLocalDomains).map { $0.lowercased() })
        self.aliases = Dictionary(aliases.map { (Self.aliasKey($0.key), $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// `root` → `root@<hostname>`; anything with an `@`, and the null sender "", unchanged.
    public func qualify(_ mailbox: String) -> String {
        if mailbox.isEmpty || Self.domainStart(of: mailbox) != nil { return mailbox }
        return mailbox + "@" + hostname
    }

    /// The local part when `mailbox` is this host's (bare, or at one of `localDomains`).
    public func localPart(of mailbox: String) -> String? {
        guard !mailbox.isEmpty else { return nil }
        guard let at = Self.domainStart(of: mailbox) else { return mailbox }
        let domain = mailbox[mailbox.index(after: at)...]
        return localDomains.contains(domain.lowercased()) ? String(mailbox[..<at]) : nil
    }

    /// The envelope recipients as they go upstream: each qualified, local ones replaced by
    /// their aliases (recursively), duplicates dropped (case-insensitively, first kept).
    public func recipients(_ given: [String]) -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        for recipient in given {
            for address in expand(recipient, path: []) where seen.insert(address.lowercased()).inserted {
                out.append(address)
            }
        }
        return out
    }

    /// `path` holds the local parts being expanded; the map is acyclic (checked at load), so
    /// it only stops the self-reference `root: root`, which keeps the address.
    private func expand(_ address: String, path: [String]) -> [String] {
        guard let local = localPart(of: address), let targets = aliases[Self.aliasKey(local)],
              !path.contains(Self.aliasKey(local)) else { return [qualify(address)] }
        return targets.flatMap { expand($0, path: path + [Self.aliasKey(local)]) }
    }

    /// A quoted local part is looked up without its quotes; names compare in lower case.
    static func aliasKey(_ local: String) -> String {
        var key = local
        if key.count >= 2, key.hasPrefix("\""), key.hasSuffix("\"") { key = String(key.dropFirst().dropLast()) }
        return key.lowercased()
    }

    /// The `@` before the domain: the last one outside a quoted local part.
    static func domainStart(of mailbox: String) -> String.Index? {
        var inQuote = false
        var escaped = false
        var found: String.Index?
        for index in mailbox.indices {
            let c = mailbox[index]
            if escaped { escaped = false; continue }
            if c == "\\" && inQuote { escaped = true } else if c == "\"" { inQuote.toggle() } else if c == "@" && !inQuote { found = index }
        }
        return found
    }

    /// A cycle in `aliases` (`["a", "b", "a"]`), or nil. A name listing itself is no cycle.
    public static func cycle(in aliases: [String: [String]], localDomains: Set<String>) -> [String]? {
        let lookup = LocalAddressing(hostname: localDomains.first ?? "localhost",
                                     otherLocalDomains: Array(localDomains), aliases: aliases)
        var done = Set<String>()
        for start in lookup.aliases.keys.sorted() {
            if let cycle = lookup.cycle(from: start, path: [], done: &done) { return cycle }
        }
        return nil
    }

    private func cycle(from key: String, path: [String], done: inout Set<String>) -> [String]? {
        if let at = path.firstIndex(of: key) { return Array(path[at...]) + [key] }
        guard !done.contains(key), let targets = aliases[key] else { return nil }
        for target in targets {
            guard let local = localPart(of: target) else { continue }
            let next = Self.aliasKey(local)
            if next == key { continue }
            if let cycle = cycle(from: next, path: path + [key], done: &done) { return cycle }
        }
        done.insert(key)
        return nil
    }
}
