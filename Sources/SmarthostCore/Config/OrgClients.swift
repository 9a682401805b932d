#if canImport(Glibc)
import Glibc
#endif

/// `org_header_trust:` — when the org header may choose a message's org (issue 15).
public enum OrgHeaderTrust: String, Sendable, Equatable, CaseIterable {
    /// Whatever org the header names (the behaviour before issue 15).
    case any
    /// Only an org whose `senders` match the envelope sender; otherwise `550 5.7.1`.
    case senders
}

/// One entry of an org's `clients:`: who may submit mail that goes out as that org.
/// Address rules match TCP clients, uid rules match Unix-socket clients; neither matches
/// the other kind.
public enum ClientRule: Sendable, Hashable, CustomStringConvertible {
    /// `10.0.0.0/8`, `127.0.0.2`, `::1`: a TCP client's address.
    case block(CIDRBlock)
    /// `uid:1001`, or `user:robot` resolved at load (the name kept for reports).
    case uid(UInt32, user: String?)

    public var description: String {
        switch self {
        case .block(let block): return block.description
        case .uid(let uid, let user?): return "user:\(user) (uid \(uid))"
        case .uid(let uid, nil): return "uid:\(uid)"
        }
    }

    /// Why an entry is not a rule, for the configuration error.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case badUID
        case unknownUser(String)
        case block(CIDRBlock.ParseError)

        public var description: String {
            switch self {
            case .badUID: return "is not a uid (uid:0 to uid:4294967294)"
            case .unknownUser(let name): return "names no user on this system (getpwnam(\"\(name)\") found none)"
            case .block(.notAnAddress):
                return "is not an address, an address block, uid:N or user:NAME (e.g. 10.0.0.0/8, ::1, uid:1001, user:robot)"
            case .block(let why):
                return why.description
            }
        }
    }

    /// `uid:N`, `user:NAME` or an address block. `lookUpUser` maps a user name to its uid
    /// (`getpwnam`); tests give their own.
    public static func parse(_ text: String, lookUpUser: (String) -> UInt32? = ClientRule.systemUID)
        -> Result<ClientRule, ParseError> {
        if text.hasPrefix("uid:") {
            let digits = text.dropFirst(4)
            // (uid_t)-1 means "no uid" to the kernel's calls: never a real user.
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let uid = UInt32(digits), uid != UInt32.max else { return .failure(.badUID) }
            return .success(.uid(uid, user: nil))
        }
        if text.hasPrefix("user:") {
            let name = String(text.dropFirst(5))
            guard !name.isEmpty, let uid = lookUpUser(name) else { return .failure(.unknownUser(name)) }
            return .success(.uid(uid, user: name))
        }
        switch CIDRBlock.parse(text) {
        case .success(let block): return .success(.block(block))
        case .failure(let why): return .failure(.block(why))
        }
    }

    /// The uid of a user name from the system's user database (`getpwnam_r`: reentrant, as
    /// a reload may run beside other threads).
    public static func systemUID(_ name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil else { return nil }
        return UInt32(entry.pw_uid)
    }
}

extension RelayConfig.Schema {
    /// `org_header_trust: any | senders`; `any` when absent.
    mutating func decodeOrgHeaderTrust(_ top: RelayConfig.Section) -> OrgHeaderTrust {
        guard let field = top.field("org_header_trust") else { return .any }
        return reader.choice(field, OrgHeaderTrust.self) ?? .any
    }

    /// An org's `clients:`; nil when absent (every client). An empty list is refused rather
    /// than read as "nobody": a key that silently locks an org out is a trap.
    mutating func decodeOrgClients(_ section: RelayConfig.Section, org: String) -> [ClientRule]? {
        guard let field = section.field("clients"), let items = reader.strings(field) else { return nil }
        guard !items.isEmpty else {
            reader.report(field.line, field.path, "an empty list would refuse every client; remove the key to allow all")
            return nil
        }
        var rules: [ClientRule] = []
        for item in items {
            switch ClientRule.parse(item.text) {
            case .success(let rule):
                rules.append(rule)
                warnIfAnyLocalUser(rule, org: org, item)
            case .failure(let why): reader.report(item.line, item.path, "\(item.text) \(why)")
            }
        }
        return rules
    }

    /// Any process may bind any 127.x.y.z or ::1 (Linux routes all of 127.0.0.0/8 to `lo`,
    /// and binding a source address there needs no privilege), so an address rule that takes
    /// a loopback client identifies no one: every local user can send as the org.
    private mutating func warnIfAnyLocalUser(_ rule: ClientRule, org: String,
                                             _ item: (text: String, path: String, line: Int?)) {
        guard case .block(let block) = rule, block.includesLoopback else { return }
        reader.warn(item.line, item.path,
                    "org \(org): clients rule \(item.text) is met by any local user (any process can bind any "
                        + "127.x.y.z or ::1 address); name the submitting user with uid:/user: rules over the Unix socket")
    }

    /// Under `org_header_trust: any` the org header alone chooses the org, so any local
    /// client may send with the route (and credentials) of an org that has its own route
    /// and no `clients:` rule. One line for all of them: a configuration may hold 10 000.
    mutating func warnClaimableOrgs(_ orgs: [OrgSetting], trust: OrgHeaderTrust, orgHeader: String,
                                    _ top: RelayConfig.Section) {
        guard trust == .any else { return }
        let claimable = orgs.filter { org in
            guard org.clients == nil, case .custom = org.route else { return false }
            return true
        }.map(\.id)
        guard !claimable.isEmpty else { return }
        let shown = claimable.prefix(5).joined(separator: ", ")
            + (claimable.count > 5 ? " and \(claimable.count - 5) more" : "")
        reader.warn(top.field("org_header_trust")?.line, "org_header_trust",
                    "org_header_trust is any: any local client can claim org \(shown) (and its own route's credentials) "
                        + "with the \(orgHeader) header; set org_header_trust: senders, or give each org clients: uid:/user: rules")
    }
}
