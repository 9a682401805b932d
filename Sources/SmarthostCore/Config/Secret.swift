#if canImport(Glibc)
import Glibc
#endif

/// A password or API key. Printing it, interpolating it or dumping the struct that holds it
/// shows `********`: a secret must never reach a log or a terminal by accident. The value is
/// read only through `revealed`, a name that stands out in review.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// Where the value came from (`env SENDGRID_API_KEY`, `file /etc/smarthost/acme.secret`,
    /// `inline`); never the value itself, so it is safe to show.
    public let origin: String
    private let value: String

    public init(revealed value: String, origin: String) {
        self.value = value
        self.origin = origin
    }

    /// The secret itself, for the one place that sends it (SMTP AUTH).
    public var revealed: String { value }

    public var description: String { "********" }
    public var debugDescription: String { "********" }
    /// `dump()` and `Mirror` see no children, so the value does not leak through reflection.
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

extension Secret {
    /// Why a secret could not be loaded. The text names the file or variable, never the value.
    enum LoadError: Error, Equatable, CustomStringConvertible {
        case envNotSet(String)
        case envEmpty(String)
        case cannotOpen(path: String, reason: String)
        /// The file does not exist (yet): on a fresh install the operator has not put the
        /// key in place. The relay still starts and holds the route's mail.
        case missing(String)
        case notRegularFile(String)
        case tooOpen(path: String, mode: UInt32)
        case tooLarge(String)
        /// `entry` as setfacl spells it: `user:www-data`, `group:adm`.
        case readableThroughACL(path: String, entry: String)
        case empty(String)

        var description: String {
            switch self {
            case .envNotSet(let name): return "environment variable \(name) is not set"
            case .envEmpty(let name): return "environment variable \(name) is empty"
            case .cannotOpen(let path, let reason): return "cannot read \(path): \(reason)"
            case .missing(let path): return "\(path) does not exist"
            case .notRegularFile(let path): return "\(path) is not a regular file"
            case .tooOpen(let path, let mode):
                return "\(path) is accessible by group or others (mode \(Self.octal(mode))); "
                    + "a secret file must be 0600 or 0400 (chmod 600 \(path))"
            case .readableThroughACL(let path, let entry):
                return "\(path): \(entry) has read access through an ACL; a secret file must be readable "
                    + "by its owner and the relay only (setfacl -x \(entry) \(path))"
            case .tooLarge(let path): return "\(path) is larger than 64 KiB; not a password file?"
            case .empty(let path): return "\(path) is empty"
            }
        }

        private static func octal(_ mode: UInt32) -> String {
            let digits = String(mode & 0o7777, radix: 8)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
    }

    /// `password_env`: the variable's value, as given by the caller (not the live process
    /// environment, so tests and reloads see exactly what they pass).
    static func fromEnvironment(_ name: String, _ environment: [String: String]) -> Result<Secret, LoadError> {
        guard let value = environment[name] else { return .failure(.envNotSet(name)) }
        guard !value.isEmpty else { return .failure(.envEmpty(name)) }
        return .success(Secret(revealed: value, origin: "env \(name)"))
    }

    /// `password_file`: the file's content without its trailing newline. Refused when group or
    /// others have any access, or an ACL lets another account read it: a readable secret is
    /// already leaked, like ssh's private keys.
    /// `trustedDirectory`: a file systemd placed in `$CREDENTIALS_DIRECTORY` is private to the
    /// unit by construction (the directory is), but on a file system with POSIX ACLs its mode
    /// shows the ACL mask (0440), which is not "readable by others".
    static func fromFile(_ path: String, trustedDirectory: Bool = false) -> Result<Secret, LoadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return .failure(.missing(path)) }
            return .failure(.cannotOpen(path: path, reason: Self.errnoText()))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.cannotOpen(path: path, reason: Self.errnoText())) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(.notRegularFile(path)) }
        if !trustedDirectory, let refusal = Self.refusal(path, fd: fd, info) { return .failure(refusal) }
        let limit = 64 * 1024
        guard let bytes = readAll(fd, limit: limit + 1) else {
            return .failure(.cannotOpen(path: path, reason: Self.errnoText()))
        }
        guard bytes.count <= limit else { return .failure(.tooLarge(path)) }
        let text = stripTrailingNewline(String(decoding: bytes, as: UTF8.self))
        guard !text.isEmpty else { return .failure(.empty(path)) }
        return .success(Secret(revealed: text, origin: "file \(path)"))
    }

    /// Why a secret file is too open, or nil. Without an ACL: any group or other bit. With
    /// one, the group bits are the mask, so the entries decide: only the owner, the relay's
    /// own uid and its group may read (systemd grants a service its credential through a
    /// `user:` entry); others' bits still count as they are.
    private static func refusal(_ path: String, fd: Int32, _ info: stat) -> LoadError? {
        guard let acl = PosixACL.read(fd: fd) else {
            return info.st_mode & 0o077 == 0 ? nil : .tooOpen(path: path, mode: UInt32(info.st_mode))
        }
        if info.st_mode & 0o007 != 0 { return .tooOpen(path: path, mode: UInt32(info.st_mode)) }
        guard let reader = acl.unwantedReader(owner: info.st_uid, user: geteuid(), group: getegid(),
                                              owningGroup: info.st_gid) else { return nil }
        return .readableThroughACL(path: path, entry: PosixACL.name(reader))
    }

    /// Editors add one final newline; it is not part of the password. Only one is removed.
    static func stripTrailingNewline(_ text: String) -> String {
        // Work on scalars: "\r\n" is a single Character in Swift.
        var scalars = Substring(text).unicodeScalars
        guard scalars.last == "\n" else { return text }
        scalars.removeLast()
        if scalars.last == "\r" { scalars.removeLast() }
        return String(scalars)
    }

    private static func readAll(_ fd: Int32, limit: Int) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
