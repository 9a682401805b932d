#if canImport(Glibc)
import Glibc
#endif

/// Who runs `sendmail` and on which host: the default envelope sender (`user@host`, as
/// Postfix's `$user@$myorigin`), the full name for an added `From:` (GECOS), and the
/// domain that qualifies a bare local part (`root` → `root@host`; an upstream has no
/// local users).
public struct LocalIdentity: Equatable, Sendable {
    public var userName: String
    public var fullName: String?
    public var hostName: String

    public init(userName: String, fullName: String?, hostName: String) {
        self.userName = userName
        self.fullName = fullName
        self.hostName = hostName
    }

    public static func current() -> LocalIdentity {
        var name = "nobody"
        var gecos: String?
        if let entry = getpwuid(getuid()) {
            name = String(cString: entry.pointee.pw_name)
            if let field = entry.pointee.pw_gecos {
                let full = String(cString: field).split(separator: ",", omittingEmptySubsequences: false).first ?? ""
                if !full.isEmpty { gecos = String(full) }
            }
        }
        return LocalIdentity(userName: name, fullName: gecos, hostName: hostName())
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    public var defaultSender: String { "\(userName)@\(hostName)" }

    /// `<a@b>` → `a@b`; `root` → `root@host`; "" and `<>` stay the null path.
    public func qualify(_ address: String) -> String {
        var text = address.trimmingCharacters(where: { $0 == " " || $0 == "\t" })
        if text.hasPrefix("<") && text.hasSuffix(">") { text = String(text.dropFirst().dropLast()) }
        if text.isEmpty || text.contains("@") { return text }
        return "\(text)@\(hostName)"
    }
}
