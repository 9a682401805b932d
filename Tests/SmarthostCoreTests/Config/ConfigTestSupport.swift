import Foundation
@testable import SmarthostCore

/// Helpers shared by the Config and Routing tests (prefixed: the test module is shared).
enum ConfigTestSupport {
    /// The smallest valid configuration: the default route alone.
    static let minimal = """
        default:
          host: smtp.example.com
          port: 587
        """

    static func parse(
        _ yaml: String, environment: [String: String] = [:], baseDirectory: String = "/nonexistent"
    ) throws(ConfigErrors) -> RelayConfig {
        try RelayConfig.parse(yaml: yaml, source: "test.yaml", baseDirectory: baseDirectory,
                              environment: environment, systemHostname: "relay.test")
    }

    /// The issues of a configuration that must fail; empty when it (wrongly) loads.
    static func issues(_ yaml: String, environment: [String: String] = [:], baseDirectory: String = "/nonexistent")
        -> [ConfigIssue]
    {
        do {
            _ = try parse(yaml, environment: environment, baseDirectory: baseDirectory)
            return []
        } catch {
            return error.issues
        }
    }

    /// A fresh directory under the system temp dir.
    static func makeTempDirectory() -> String {
        let path = NSTemporaryDirectory() + "smarthost-config-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `content` at `path` with the given permission bits.
    static func writeFile(_ path: String, _ content: String, mode: Int) {
        FileManager.default.createFile(atPath: path, contents: Data(content.utf8),
                                       attributes: [.posixPermissions: mode])
        // createFile applies the umask; set the mode explicitly so 0644 really is 0644.
        try! FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    /// The repository's `config/` directory, found from this file's place in the tree.
    static func repositoryConfigDirectory(file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("config").path
    }
}
