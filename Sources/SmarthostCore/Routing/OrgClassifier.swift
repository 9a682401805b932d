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
    /// The org header's value when it could not be an org id and was ignored (the message
    /// was classified as if it had no header): for one log line per message.
    public var ignoredHeaderValue: String?

    public init(orgID: String?, source: OrgSource, ignoredHeaderValue: String? = nil) {
        self.orgID = orgID
        self.source = source
        self.ignoredHeaderValue = ignoredHeaderValue
    }
}

/// Decides which organization a message belongs to (product.md §3), first match wins:
/// the org header, then the envelope sender against each org's `senders` in file order,
/// then the host level. Pure: strings in, a choice out.
public struct OrgClassifier: Sendable {
    /// Configured ids are accepted from the header even outside `isOrgID`'s grammar.
    private let configuredIDs: Set<String>
    public let orgHeader: String
    /// Patterns without a wildcard, by address (domain folded): one lookup.
    private let exact: [String: Rule]
    /// `*@domain` patterns, by domain: one lookup.
    private let anyAtDomain: [String: Rule]
    /// Other patterns whose domain has no wildcard (`robot-*@acme.example`), by domain.
    private let byDomain: [String: [Rule]]
    /// Patterns with a wildcard in the domain, in file order: the only ones every message
    /// may have to try, and only while they could still come first.
    private let wildDomain: [Rule]

    /// One pattern and its place in file order: the earliest match wins, whichever index
    /// found it, so the indexes change the cost, never the answer.
    struct Rule: Sendable {
        let order: Int
        /// Index of the org in the configuration's list.
        let orgIndex: Int
        let orgID: String
        let pattern: SenderPattern
    }

    public init(orgHeader: String, orgs: [OrgSetting]) {
        configuredIDs = Set(orgs.map(\.id))
        self.orgHeader = orgHeader
        var exact: [String: Rule] = [:], anyAtDomain: [String: Rule] = [:]
        var byDomain: [String: [Rule]] = [:], wildDomain: [Rule] = []
        var order = 0
        for (orgIndex, org) in orgs.enumerated() {
            for text in org.senders {
                let rule = Rule(order: order, orgIndex: orgIndex, orgID: org.id, pattern: SenderPattern(text))
                order += 1
                if let key = rule.pattern.exactKey {
                    if exact[key] == nil { exact[key] = rule }
                } else if let domain = rule.pattern.literalDomain {
                    if rule.pattern.matchesAnyLocalPart {
                        if anyAtDomain[domain] == nil { anyAtDomain[domain] = rule }
                    } else {
                        byDomain[domain, default: []].append(rule)
                    }
                } else {
                    wildDomain.append(rule)
                }
            }
        }
        self.exact = exact
        self.anyAtDomain = anyAtDomain
        self.byDomain = byDomain
        self.wildDomain = wildDomain
    }

    public init(config: RelayConfig) {
        self.init(orgHeader: config.orgHeader, orgs: config.orgs)
    }

    /// `[A-Za-z0-9._-]{1,64}`. The id is written to every log line and spool record of the
    /// message (`org=<id>`) and shown by the queue tools: a header value from an
    /// application is bounded and plain (a 60-line folded value once made 59 600-byte log
    /// lines, repeated on every deferral).
    public static func isOrgID(_ value: String) -> Bool {
        let bytes = value.utf8
        return (1...64).contains(bytes.count) && bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// - Parameters:
    ///   - headerValue: the value of the org header, nil when the message has none.
    ///   - sender: the envelope sender (MAIL FROM), empty for the null sender `<>`.
    ///   A value that cannot be an org id (see `isOrgID`) is ignored: the message is
    ///   classified as if it had no header, and the choice carries the value for the log.
    public func classify(headerValue: String?, sender: String) -> OrgChoice {
        if let value = headerValue.map(Self.trimmed), !value.isEmpty {
            guard Self.isOrgID(value) || configuredIDs.contains(value) else {
                var choice = classify(headerValue: nil, sender: sender)
                choice.ignoredHeaderValue = value
                return choice
            }
            return OrgChoice(orgID: value, source: .header(orgHeader))
        }
        let address = Self.unbracketed(Self.trimmed(sender))
        if !address.isEmpty, let rule = firstRule(matching: address) {
            return OrgChoice(orgID: rule.orgID, source: .senderPattern(rule.pattern.text))
        }
        return OrgChoice(orgID: nil, source: .hostLevel)
    }

    /// The first rule in file order whose pattern matches `address`.
    func firstRule(matching address: String) -> Rule? {
        let parsed = SenderPattern.Address(address)
        var best = exact[parsed.key]
        if let rule = anyAtDomain[parsed.domain], rule.order < (best?.order ?? .max) { best = rule }
        for list in [byDomain[parsed.domain] ?? [], wildDomain] {
            for rule in list {
                if rule.order >= (best?.order ?? .max) { break }
                if rule.pattern.matches(parsed) { best = rule; break }
            }
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
    private let local: [UInt8]
    /// Folded like a DNS name (RFC 5321 §2.4: only the receiving host may fold the local part).
    private let domain: [UInt8]

    /// An address split and folded once, for every pattern it is tried against.
    struct Address {
        let local: [UInt8]
        let domainBytes: [UInt8]
        /// The folded domain, and `local@domain` with it: the index keys.
        let domain: String
        let key: String

        init(_ text: String) {
            let (local, domain) = SenderPattern.split(text)
            let folded = domain.lowercased()
            self.local = Array(local.utf8)
            self.domainBytes = Array(folded.utf8)
            self.domain = folded
            self.key = String(local) + "@" + folded
        }
    }

    init(_ text: String) {
        self.text = text
        let (local, domain) = Self.split(text)
        self.local = Array(local.utf8)
        self.domain = Array(domain.lowercased().utf8)
    }

    private static let star = UInt8(ascii: "*")

    /// The lookup key of a pattern without `*`, the same as `Address.key` of the one
    /// address it matches.
    var exactKey: String? {
        local.contains(Self.star) || domain.contains(Self.star) ? nil
            : String(decoding: local, as: UTF8.self) + "@" + String(decoding: domain, as: UTF8.self)
    }

    /// The domain when it has no wildcard: only addresses at that domain can match.
    var literalDomain: String? {
        domain.contains(Self.star) ? nil : String(decoding: domain, as: UTF8.self)
    }

    /// `*@…`: any local part.
    var matchesAnyLocalPart: Bool { local == [Self.star] }

    /// Every address `other` matches, this matches too. `other`'s `*` is taken as a literal
    /// character: a `*` of ours can absorb it, a literal of ours cannot, so a match on the
    /// text means a match on every expansion of it.
    func covers(_ other: String) -> Bool {
        matches(Address(other))
    }

    func matches(_ address: String) -> Bool {
        matches(Address(address))
    }

    func matches(_ address: Address) -> Bool {
        Self.glob(local, address.local) && Self.glob(domain, address.domainBytes)
    }

    /// At the last `@`: a quoted local part may contain `@`, a domain never does.
    static func split(_ address: String) -> (Substring, Substring) {
        guard let at = address.lastIndex(of: "@") else { return (Substring(address), "") }
        return (address[..<at], address[address.index(after: at)...])
    }

    /// Iterative glob with backtracking to the last `*`: linear in practice, never exponential.
    private static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == Self.star {
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
        while p < pattern.count, pattern[p] == Self.star { p += 1 }
        return p == pattern.count
    }
}
