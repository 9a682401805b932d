/// Which messages a queue command acts on: ids (or unambiguous prefixes of them, as
/// operators type them from `queue list`), or every message matching `--org`, `--route`,
/// `--older-than` (Postfix's `postsuper -d ALL deferred`, narrowed by what our queue knows).
public struct QueueSelector: Sendable, Equatable {
    /// An org id; "-" selects the host level (messages no org claimed).
    public var org: String?
    /// The route as `queue list` shows it (`smtp.acme.example:465`).
    public var route: String?
    public var olderThanSeconds: Int64?

    public init(org: String? = nil, route: String? = nil, olderThanSeconds: Int64? = nil) {
        self.org = org
        self.route = route
        self.olderThanSeconds = olderThanSeconds
    }

    public var isEmpty: Bool { org == nil && route == nil && olderThanSeconds == nil }

    public func matches(_ envelope: SpoolEnvelope, now: Int64) -> Bool {
        if let org, (envelope.org ?? "-") != org { return false }
        if let route, envelope.route != route { return false }
        if let olderThanSeconds, now - envelope.receivedAt < olderThanSeconds { return false }
        return true
    }

    /// `--older-than 2h`: the config's duration syntax (a bare number is seconds).
    public static func seconds(_ text: String) -> Int64? {
        RelayConfig.Units.milliseconds(text, bareUnitMilliseconds: 1000).map { $0 / 1000 }
    }

    public enum PrefixError: Error, Equatable, CustomStringConvertible {
        case tooShort(String)
        case noMatch(String)
        case ambiguous(String, [SpoolID])

        public var description: String {
            switch self {
            case .tooShort(let text): return "\(text): give at least \(QueueSelector.minimumPrefix) characters of a queue id"
            case .noMatch(let text): return "\(text): no message has this id"
            case .ambiguous(let text, let ids):
                return "\(text) is ambiguous: " + ids.prefix(5).map(\.rawValue).joined(separator: ", ")
                    + (ids.count > 5 ? " and \(ids.count - 5) more" : "")
            }
        }
    }

    static let minimumPrefix = 4

    /// A whole id, or the one id among `known` that starts with `text`.
    public static func resolve(_ text: String, among known: [SpoolID]) -> Result<SpoolID, PrefixError> {
        if let id = SpoolID(text) { return .success(id) }
        guard text.count >= minimumPrefix else { return .failure(.tooShort(text)) }
        let matches = Array(Set(known.filter { $0.rawValue.hasPrefix(text) })).sorted()
        switch matches.count {
        case 0: return .failure(.noMatch(text))
        case 1: return .success(matches[0])
        default: return .failure(.ambiguous(text, matches))
        }
    }
}
