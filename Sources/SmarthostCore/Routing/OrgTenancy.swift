/// Who is submitting a message: what an org's `clients:` rules are matched against, and
/// what logs and the `Received:` header name.
public enum ClientIdentity: Sendable, Equatable, CustomStringConvertible {
    /// A TCP client: its address (4 or 16 bytes, network order) and that address as text.
    case address(bytes: [UInt8], text: String)
    /// A Unix-socket client and its uid (`SO_PEERCRED`); nil if the kernel would not say,
    /// which no uid rule matches.
    case unix(uid: UInt32?)

    /// `127.0.0.1`, `::1`, `uid=1001`.
    public var description: String {
        switch self {
        case .address(_, let text): return text
        case .unix(let uid?): return "uid=\(uid)"
        case .unix(nil): return "uid=unknown"
        }
    }

    public var isUnix: Bool {
        if case .unix = self { return true }
        return false
    }

    func matches(_ rule: ClientRule) -> Bool {
        switch (self, rule) {
        case (.address(let bytes, _), .block(let block)):
            if bytes.count == 4 { return block.contains(ipv4: bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
            return block.contains(ipv6: bytes)
        case (.unix(let uid?), .uid(let wanted, _)):
            return uid == wanted
        default:
            return false
        }
    }
}

/// Whether a message may go out as the org it was classified into (issue 15): on a host
/// where several tenants' code runs, one tenant must not send with another's route and
/// credentials. Pure: the classification, the sender and the client in, a decision out.
///
/// Two rules, in this order:
/// - `org_header_trust: senders`: an org chosen by the org header needs an envelope sender
///   that one of that org's own `senders` patterns matches (an org the configuration does
///   not have, or one without `senders`, is never a header's to choose).
/// - An org with `clients:` takes mail only from a client one of its rules matches,
///   whether the header or the sender chose it.
/// Mail for the host level is never refused here.
public struct OrgTenancy: Sendable {
    public enum Decision: Sendable, Equatable {
        case allowed
        /// The header named `org` and the sender is not one of that org's.
        case senderNotAllowed(org: String)
        /// `org` has `clients:` and this client is not among them.
        case clientNotAllowed(org: String)
    }

    public let trust: OrgHeaderTrust
    public let orgHeader: String
    /// Each configured org's `senders` (the first definition of an id wins, as routing does).
    private let senders: [String: [SenderPattern]]
    private let clients: [String: [ClientRule]]

    public init(trust: OrgHeaderTrust, orgHeader: String, orgs: [OrgSetting]) {
        self.trust = trust
        self.orgHeader = orgHeader
        var senders: [String: [SenderPattern]] = [:], clients: [String: [ClientRule]] = [:]
        for org in orgs where senders[org.id] == nil {
            senders[org.id] = org.senders.map(SenderPattern.init)
            if let rules = org.clients { clients[org.id] = rules }
        }
        self.senders = senders
        self.clients = clients
    }

    public init(config: RelayConfig) {
        self.init(trust: config.orgHeaderTrust, orgHeader: config.orgHeader, orgs: config.orgs)
    }

    /// True when no rule can refuse anything (`any` and no org with `clients:`): today's
    /// behaviour, and no work per message.
    public var isOpen: Bool { trust == .any && clients.isEmpty }

    /// - Parameters:
    ///   - choice: the classifier's answer for the message.
    ///   - sender: the envelope sender, empty for `<>` (which no pattern matches).
    public func decide(choice: OrgChoice, sender: String, client: ClientIdentity) -> Decision {
        guard let org = choice.orgID else { return .allowed }
        if trust == .senders, case .header = choice.source, !senderMatches(sender, org: org) {
            return .senderNotAllowed(org: org)
        }
        if let rules = clients[org], !rules.contains(where: client.matches) {
            return .clientNotAllowed(org: org)
        }
        return .allowed
    }

    private func senderMatches(_ sender: String, org: String) -> Bool {
        guard !sender.isEmpty, let patterns = senders[org], !patterns.isEmpty else { return false }
        let address = SenderPattern.Address(sender)
        return patterns.contains { $0.matches(address) }
    }

    /// The `550 5.7.1` a refusal becomes, sent after the whole message was read (RFC 5321
    /// §4.2.5: one reply for the transaction). The org id is plain text already: a header
    /// value outside `[A-Za-z0-9._-]{1,64}` never chose an org; a configured id is shown
    /// with anything but printable ASCII replaced, as it goes into a reply line.
    public func reply(for decision: Decision, client: ClientIdentity) -> SMTPReply? {
        switch decision {
        case .allowed:
            return nil
        case .senderNotAllowed(let org):
            return SMTPReply(550, "5.7.1", "Error: the \(orgHeader) header names org \(Self.printable(org)), "
                + "whose senders do not include this envelope sender")
        case .clientNotAllowed(let org):
            return SMTPReply(550, "5.7.1", "Error: client \(client) may not send as org \(Self.printable(org))")
        }
    }

    static func printable(_ text: String) -> String {
        String(decoding: text.utf8.prefix(64).map { $0 > 32 && $0 < 127 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
