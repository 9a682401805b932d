/// `aliases:` — local part → addresses, `/etc/aliases` for a host whose mail all leaves:
///
///     aliases:
///       root: ops@example.com
///       postmaster: root
///       www-data: [ops@example.com, web-team@example.com]
///
/// Applied at acceptance to recipients on this host (a bare local part or one at
/// `hostname:`, the system host name or `localhost`); see `LocalAddressing` for what
/// happens to a local part with no alias and why a cycle is refused here.
extension RelayConfig.Schema {
    mutating func decodeAliases(_ field: RelayConfig.Field, hostname: String) -> [String: [String]] {
        guard let section = reader.openSection(field.node, path: field.path, line: field.keyLine) else { return [:] }
        var aliases: [String: [String]] = [:]
        var firstLine: [String: Int?] = [:]
        for entry in section.fields {
            let key = LocalAddressing.aliasKey(entry.key)
            guard !entry.key.contains("@"), Self.isAliasAddress(entry.key) else {
                reader.report(entry.keyLine, entry.path, "\(entry.key) is not a local part (a name such as root, without @)")
                continue
            }
            if let line = firstLine[key] {
                reader.report(entry.keyLine, entry.path, "\(entry.key) is already an alias (at line \(line.map(String.init) ?? "?"); names compare in lower case)")
                continue
            }
            firstLine[key] = entry.keyLine
            guard let targets = aliasTargets(entry), !targets.isEmpty else { continue }
            aliases[key] = targets
        }
        // At the first name of the loop: the relay would otherwise expand it for ever.
        if let cycle = LocalAddressing.cycle(in: aliases, localDomains: localDomains.union([hostname.lowercased()])) {
            reader.report(firstLine[cycle[0]] ?? field.keyLine, field.path + "." + cycle[0],
                          "aliases loop: \(cycle.joined(separator: " → ")) (each name must end at an address of another domain or at itself)")
        }
        return aliases
    }

    /// `hostname:`'s domain is added by the caller; these are the others that are this host's.
    var localDomains: Set<String> { [systemHostname.lowercased(), "localhost"] }

    /// One address or a list of them; each a mail address or a local part.
    private mutating func aliasTargets(_ entry: RelayConfig.Field) -> [String]? {
        let items: [(text: String, path: String, line: Int?)]
        if case .scalar = entry.node {
            guard let text = reader.string(entry) else { return nil }
            items = [(text, entry.path, entry.line)]
        } else {
            guard let list = reader.strings(entry) else { return nil }
            items = list
        }
        if items.isEmpty { reader.report(entry.line, entry.path, "names no address") }
        var out: [String] = []
        for item in items {
            guard Self.isAliasAddress(item.text) else {
                reader.report(item.line, item.path, "\(item.text) is not a mail address or a local part")
                continue
            }
            out.append(item.text)
        }
        return out
    }

    /// RFC 5321 syntax as the relay's RCPT TO reads it, a bare local part included.
    static func isAliasAddress(_ text: String) -> Bool {
        (try? MailPath.parse(Array("<\(text)>".utf8)[...], role: .forwardPath, utf8Allowed: true,
                             localOnlyAllowed: true)) != nil
    }
}
