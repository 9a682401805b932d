#if canImport(Glibc)
import Glibc
#endif

/// Where `sendmail` submits, and the failures that make it exit before it tries.
///
/// Order: `--submit HOST:PORT` (or `unix:/path`), then `$SMARTHOST_SUBMIT`, else the
/// tenants' Unix socket — the configuration's `unix:` listener, or the packaged
/// `/run/smarthost/smtp.sock` when it exists — tried first, because there the relay learns
/// the caller's uid (`SO_PEERCRED`) and `uid:`/`user:` rules apply to sendmail's mail; then
/// the first TCP `listen:` address of the configuration (an unspecified `0.0.0.0`/`[::]`
/// becomes loopback), then `127.0.0.1:25` — the address of `smarthost.socket`. Only the
/// `listen:` and `spool:` keys
/// are read, never resolved as a whole: the submitting program (PHP as www-data, a user's
/// `mail`) must not need the secrets, nor even read access. A configuration that is missing
/// or unreadable to the caller therefore means the default address; one that is readable
/// but is not YAML is an error.
public struct SubmissionTarget: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    /// A Unix socket instead of host and port.
    public var unixPath: String?

    public static let defaultTarget = SubmissionTarget(host: "127.0.0.1", port: 25)
    /// Where `smarthost.socket`'s tenants' drop-in puts the Unix socket.
    public static let defaultUnixSocket = "/run/smarthost/smtp.sock"
    public static let environmentKey = "SMARTHOST_SUBMIT"

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init(unixPath: String) {
        self.host = ""
        self.port = 0
        self.unixPath = unixPath
    }

    public var description: String {
        if let unixPath { return "unix:\(unixPath)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// `host:port`, `[v6]:port`, a bare host (port 25), or `unix:/path`.
    public static func parse(_ text: String) -> SubmissionTarget? {
        if text.hasPrefix(ListenAddress.unixPrefix) {
            let path = String(text.dropFirst(ListenAddress.unixPrefix.count))
            return path.hasPrefix("/") ? SubmissionTarget(unixPath: path) : nil
        }
        if let listen = ListenAddress.parse(text) { return SubmissionTarget(host: listen.host, port: listen.port) }
        guard let colon = text.lastIndex(of: ":") else {
            return text.isEmpty ? nil : SubmissionTarget(host: text, port: 25)
        }
        let host = String(text[..<colon]).trimmingBrackets
        guard !host.isEmpty, let port = UInt16(text[text.index(after: colon)...]), port > 0 else { return nil }
        return SubmissionTarget(host: host, port: port)
    }

    /// Every place to try, in order: the one named by `--submit`/the environment, or the
    /// Unix socket (when there is one) then the TCP address.
    public static func candidates(option: String?, environment: [String: String], configPath: String,
                                  socketExists: (String) -> Bool = isSocket) throws(SubmissionFailure) -> [SubmissionTarget] {
        if option != nil || environment[environmentKey] != nil {
            return [try resolve(option: option, environment: environment, configPath: configPath)]
        }
        let keys = try ConfigKeys.read(path: configPath)
        let configured = keys?.listen.first(where: { $0.unixPath != nil })?.unixPath
        var targets: [SubmissionTarget] = []
        if let path = configured ?? (socketExists(defaultUnixSocket) ? defaultUnixSocket : nil) {
            targets.append(SubmissionTarget(unixPath: path))
        }
        targets.append(try tcpTarget(keys, configPath: configPath))
        return targets
    }

    public static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
    }

    /// The one target of `--submit`/the environment, else the TCP address.
    public static func resolve(option: String?, environment: [String: String],
                               configPath: String) throws(SubmissionFailure) -> SubmissionTarget {
        if let text = option ?? environment[environmentKey] {
            guard let target = parse(text) else {
                throw .usage("\(text) is not host:port (from \(option != nil ? "--submit" : environmentKey))")
            }
            return target
        }
        return try tcpTarget(try ConfigKeys.read(path: configPath), configPath: configPath)
    }

    private static func tcpTarget(_ keys: ConfigKeys?, configPath: String) throws(SubmissionFailure) -> SubmissionTarget {
        guard let listen = keys?.listen.first(where: { $0.unixPath == nil }) else {
            return defaultTarget
        }
        guard listen.port != 0 else {
            throw .tempfail("\(configPath): listen \(listen) has no fixed port; set \(environmentKey)=host:port")
        }
        switch listen.host {
        case "0.0.0.0": return SubmissionTarget(host: "127.0.0.1", port: listen.port)
        case "::": return SubmissionTarget(host: "::1", port: listen.port)
        default: return SubmissionTarget(host: listen.host, port: listen.port)
        }
    }
}

private extension String {
    var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}
