/// How a message's org was found, for logs and `smarthost routes`.
public enum OrgSource: Sendable, Equatable {
    /// The org header (named `header`) carried the id.
    case header(String)
    /// The envelope sender matched this pattern of the org's `senders`.
    case senderPattern(String)
    /// Neither: the message belongs to the host level.
    case hostLevel
}

/// The org of one message and why.
public struct OrgChoice: Sendable, Equatable {
    /// nil = host level. May name an org the configuration does not have; that org has
    /// not customized and resolves to the host level.
    public var orgID: String?
    public var source: OrgSource

    public init(orgID: String?, source: OrgSource) {
        self.orgID = orgID
        self.source = source
    }
}

/// Decides which organization a message belongs to (product.md §3), first match wins:
/// the org header, then the envelope sender against each org's `senders` in file order,
/// then the host level. Pure: strings in, a choice out.
public struct OrgClassifier: Sendable {
    public let orgHeader: String
    /// Patterns without a wildcard, by address (domain folded): one lookup.
    private let exact: [String: Rule]
    /// `*@domain` patterns, by domain: one lookup.
    private let anyAtDomain: [String: Rule]
    /// Every other pattern, in file order: tried only while it could still come first.
    private let general: [Rule]

    /// One pattern and its place in file order: the earliest match wins, whichever index
    /// found it, so the indexes change the cost, never the answer.
    private struct Rule: Sendable {
        let order: Int
        let orgID: String
        let pattern: SenderPattern
    }

    public init(orgHeader: String, orgs: [OrgSetting]) {
        self.orgHeader = orgHeader
        var exact: [String: Rule] = [:], anyAtDomain: [String: Rule] = [:], general: [Rule] = []
        var order = 0
        for org in orgs {
            for text in org.senders {
                let rule = Rule(order: order, orgID: org.id, pattern: SenderPattern(text))
                order += 1
                if let key = rule.pattern.exactKey {
                    if exact[key] == nil { exact[key] = rule }
                } else if let domain = rule.pattern.anyLocalPartDomain {
                    if anyAtDomain[domain] == nil { anyAtDomain[domain] = rule }
                } else {
                    general.append(rule)
                }
            }
        }
        self.exact = exact
        self.anyAtDomain = anyAtDomain
        self.general = general
    }

    public init(config: RelayConfig) {
        self.init(orgHeader: config.orgHeader, orgs: config.orgs)
    }

    /// - Parameters:
    ///   - headerValue: the value of the org header, nil when the message has none.
    ///   - sender: the envelope sender (MAIL FROM), empty for the null sender `<>`.
    public func classify(headerValue: String?, sender: String) -> OrgChoice {
        if let value = headerValue.map(Self.trimmed), !value.isEmpty {
            return OrgChoice(orgID: value, source: .header(orgHeader))
        }
        let address = Self.unbracketed(Self.trimmed(sender))
        if !address.isEmpty, let rule = firstRule(matching: address) {
            return OrgChoice(orgID: rule.orgID, source: .senderPattern(rule.pattern.text))
        }
        return OrgChoice(orgID: nil, source: .hostLevel)
    }

    private func firstRule(matching address: String) -> Rule? {
        var best = exact[SenderPattern.key(address)]
        if let rule = anyAtDomain[SenderPattern.domainKey(address)], rule.order < (best?.order ?? .max) { best = rule }
        for rule in general {
            if rule.order >= (best?.order ?? .max) { break }
            if rule.pattern.matches(address) { return rule }
        }
        return best
    }

    private static func trimmed(_ text: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }

    /// `<a@b>` → `a@b`, as a sender is sometimes handed over with its SMTP brackets.
    private static func unbracketed(_ text: String) -> String {
        text.hasPrefix("<") && text.hasSuffix(">") ? String(text.dropFirst().dropLast()) : text
    }
}

/// One `senders` pattern: `*` matches any run of characters. The domain compares without
/// case (DNS names are case-insensitive); the local part with case, as RFC 5321 §2.4 says
/// only the receiving host may fold it.
struct SenderPattern: Sendable {
    let text: String
    private let local: [Character]
    private let domain: [Character]

    init(_ text: String) {
        self.text = text
        let (local, domain) = Self.split(text)
        self.local = Array(local)
        self.domain = Array(domain.lowercased())
    }

    /// The lookup key of a pattern without `*`, the same as `key(address)` of the one
    /// address it matches.
    var exactKey: String? {
        local.contains("*") || domain.contains("*") ? nil : String(local) + "@" + String(domain)
    }

    /// The domain of a `*@domain` pattern (domain without wildcards).
    var anyLocalPartDomain: String? {
        local == ["*"] && !domain.contains("*") ? String(domain) : nil
    }

    static func key(_ address: String) -> String {
        let (local, domain) = split(address)
        return String(local) + "@" + domain.lowercased()
    }

    static func domainKey(_ address: String) -> String {
        split(address).1.lowercased()
    }

    /// Every address `other` matches, this matches too. `other`'s `*` is taken as a literal
    /// character: a `*` of ours can absorb it, a literal of ours cannot, so a match on the
    /// text means a match on every expansion of it.
    func covers(_ other: String) -> Bool {
        matches(other)
    }

    func matches(_ address: String) -> Bool {
        let (local, domain) = Self.split(address)
        return Self.glob(self.local, Array(local)) && Self.glob(self.domain, Array(domain.lowercased()))
    }

    /// At the last `@`: a quoted local part may contain `@`, a domain never does.
    private static func split(_ address: String) -> (Substring, Substring) {
        guard let at = address.lastIndex(of: "@") else { return (Substring(address), "") }
        return (address[..<at], address[address.index(after: at)...])
    }

    /// Iterative glob with backtracking to the last `*`: linear in practice, never exponential.
    private static func glob(_ pattern: [Character], _ text: [Character]) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "*" {
                star = p
                resume = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
