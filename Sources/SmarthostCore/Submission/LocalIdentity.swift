#if canImport(Glibc)
import Glibc
#endif

/// Who runs `sendmail` and on which host: the default envelope sender (the bare user
/// name), the full name for an added `From:` (GECOS), and the host name for the
/// Message-ID and HELO (the configuration's `hostname:` when the caller can read it).
/// Bare local parts stay bare here: the relay qualifies them at acceptance with its
/// `hostname:` (`root` → `root@<hostname>`, Postfix's `$user@$myorigin`), which a caller
/// who cannot read the configuration would otherwise get wrong (the system host name).
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

    public var defaultSender: String { userName }

    /// `<a@b>` → `a@b`; `root` stays `root` (the relay qualifies it); "" and `<>` stay the
    /// null path.
    public func qualify(_ address: String) -> String {
        var text = address.trimmingCharacters(where: { $0 == " " || $0 == "\t" })
        if text.hasPrefix("<") && text.hasSuffix(">") { text = String(text.dropFirst().dropLast()) }
        return text
    }
}
