#if canImport(Glibc)
import Glibc
#endif

/// Where `sendmail` submits, and the failures that make it exit before it tries.
///
/// Order: `--submit HOST:PORT`, then `$SMARTHOST_SUBMIT`, then the first `listen:` address
/// of the configuration (an unspecified `0.0.0.0`/`[::]` becomes loopback), then
/// `127.0.0.1:25` — the address of `smarthost.socket`. Only the `listen:` and `spool:` keys
/// are read, never resolved as a whole: the submitting program (PHP as www-data, a user's
/// `mail`) must not need the secrets, nor even read access. A configuration that is missing
/// or unreadable to the caller therefore means the default address; one that is readable
/// but is not YAML is an error.
public struct SubmissionTarget: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public static let defaultTarget = SubmissionTarget(host: "127.0.0.1", port: 25)
    public static let environmentKey = "SMARTHOST_SUBMIT"

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `host:port`, `[v6]:port`, or a bare host (port 25).
    public static func parse(_ text: String) -> SubmissionTarget? {
        if let listen = ListenAddress.parse(text) { return SubmissionTarget(host: listen.host, port: listen.port) }
        guard let colon = text.lastIndex(of: ":") else {
            return text.isEmpty ? nil : SubmissionTarget(host: text, port: 25)
        }
        let host = String(text[..<colon]).trimmingBrackets
        guard !host.isEmpty, let port = UInt16(text[text.index(after: colon)...]), port > 0 else { return nil }
        return SubmissionTarget(host: host, port: port)
    }

    public static func resolve(option: String?, environment: [String: String],
                               configPath: String) throws(SubmissionFailure) -> SubmissionTarget {
        if let text = option ?? environment[environmentKey] {
            guard let target = parse(text) else {
                throw .usage("\(text) is not host:port (from \(option != nil ? "--submit" : environmentKey))")
            }
            return target
        }
        // sendmail speaks TCP: a Unix-socket listener is for SMTP clients that choose it.
        guard let listen = try ConfigKeys.read(path: configPath)?.listen.first(where: { $0.unixPath == nil }) else {
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
