#if canImport(Glibc)
import Glibc
#endif

/// The keys of the relay's configuration that `sendmail` and `mailq` need, read
/// without validating (or resolving the secrets of) the rest.
public struct ConfigKeys: Equatable, Sendable {
    public var listen: [ListenAddress]
    public var spool: String?
    /// `hostname:`, for the Message-ID and HELO of what sendmail submits.
    public var hostname: String?

    /// nil when the file does not exist or the caller may not read it.
    public static func read(path: String) throws(SubmissionFailure) -> ConfigKeys? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == EACCES || errno == ENOTDIR { return nil }
            throw .tempfail("\(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard let bytes = SubmissionIO.readAll(fd) else {
            throw .tempfail("\(path): \(String(cString: strerror(errno)))")
        }
        return try parse(yaml: String(decoding: bytes, as: UTF8.self), source: path)
    }

    public static func parse(yaml: String, source: String) throws(SubmissionFailure) -> ConfigKeys {
        let root: Node?
        do {
            root = try YAMLParser.compose(yaml)
        } catch {
            throw .tempfail("\(source): not valid YAML")
        }
        guard case .mapping(let mapping)? = root else { return ConfigKeys(listen: [], spool: nil) }
        var keys = ConfigKeys(listen: [], spool: nil)
        if let spool = mapping["spool"]?.string { keys.spool = spool }
        if let name = mapping["hostname"]?.string, RelayConfig.Schema.isHostname(name) { keys.hostname = name }
        if let listen = mapping["listen"] {
            let items = listen.sequence.map { Array($0) } ?? [listen]
            for item in items {
                guard let text = item.string, let address = ListenAddress.parseListener(text) else {
                    throw .tempfail("\(source): listen: \(item.string ?? "?") is not an address:port")
                }
                keys.listen.append(address)
            }
        }
        return keys
    }
}
