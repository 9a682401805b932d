import Foundation

/// The test token endpoint (`oauth_endpoint.py`, HTTPS on loopback) and the credentials it
/// knows: a client secret, an app certificate and key (RSA, for client assertions), a
/// Google service-account key file, a refresh token. Everything lives in one directory
/// the test owns; `state` is shared with the OAuth upstream (`test_upstream.py --oauth-state`).
final class OAuthEndpointProcess: @unchecked Sendable {
    let directory: URL
    var state: String { directory.appendingPathComponent("state").path }
    let clientSecret = "cs-" + UUID().uuidString
    let initialRefreshToken = "rt-" + UUID().uuidString
    private(set) var port: UInt16 = 0
    private var process: Process?
    private var stdin: Pipe?
    private let options: [String]

    var tokenURL: String { "https://localhost:\(port)/token" }
    var clientSecretFile: String { directory.appendingPathComponent("client.secret").path }
    var appCertificate: String { directory.appendingPathComponent("app-cert.pem").path }
    var appKey: String { directory.appendingPathComponent("app-key.pem").path }
    var serviceAccountFile: String { directory.appendingPathComponent("sa.json").path }
    var refreshTokenFile: String { directory.appendingPathComponent("rt.secret").path }

    /// `options`: extra flags, e.g. `["--lifetime", "6"]`, `["--rotate"]`.
    init(options: [String] = [], port: UInt16 = 0) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-oauth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory.path + "/state", withIntermediateDirectories: true)
        self.options = options
        try writeSecret(clientSecret + "\n", to: clientSecretFile)
        try writeSecret(initialRefreshToken + "\n", to: refreshTokenFile)
        try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", appKey, "-out", appCertificate,
                          "-subj", "/CN=smarthost test app", "-days", "2"])
        chmod(appKey, 0o600)
        let saKey = directory.appendingPathComponent("sa-key.pem").path
        try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", saKey,
                          "-out", directory.appendingPathComponent("sa-cert.pem").path, "-subj", "/CN=sa", "-days", "2"])
        let pem = try String(contentsOfFile: saKey, encoding: .utf8)
        let json: [String: String] = ["type": "service_account", "client_email": "relay@project.iam.gserviceaccount.com",
                                      "private_key": pem, "private_key_id": "kid-1", "client_id": "1234"]
        try writeSecret(String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self),
                        to: serviceAccountFile)
        try start(port: port)
    }

    /// Starts (or restarts on the same port, for "endpoint down, then up").
    func start(port: UInt16 = 0) throws {
        let certificates = TestCertificates.shared
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("oauth_endpoint.py").path
        process.arguments = [script, "--cert", certificates.localhost.certificate, "--key", certificates.localhost.key,
                             "--state", state, "--port", "\(port)", "--client-secret-file", clientSecretFile,
                             "--client-cert", appCertificate, "--sa-cert", directory.appendingPathComponent("sa-cert.pem").path,
                             "--refresh-token", initialRefreshToken] + options
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, !text.contains("\n") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let range = text.range(of: #"READY port=(\d+)"#, options: .regularExpression),
              let parsed = UInt16(text[range].split(separator: "=")[1]) else {
            throw UpstreamProcessError.didNotStart(text)
        }
        self.port = parsed
        self.process = process
        self.stdin = input
    }

    func stop() {
        try? stdin?.fileHandleForWriting.close()
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        process = nil
    }

    /// `grant=… status=… error=…` per request.
    var requests: [String] {
        let text = (try? String(contentsOfFile: state + "/requests.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    var successfulRequests: Int { requests.filter { $0.contains("status=200") }.count }

    /// Every token issued so far.
    var issuedTokens: [String] {
        guard let data = FileManager.default.contents(atPath: state + "/tokens.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
        return Array(object.keys)
    }

    /// The upstream refuses these from now on.
    func revokeAllTokens() throws {
        try (issuedTokens.joined(separator: "\n") + "\n").write(toFile: state + "/revoked.txt", atomically: true, encoding: .utf8)
    }

    /// The refresh token the endpoint accepts now (after rotations).
    var currentRefreshToken: String {
        (try? String(contentsOfFile: state + "/refresh_current.txt", encoding: .utf8)) ?? ""
    }

    /// `mechanism=… user=… result=… tls=…` per AUTH the upstream saw.
    var upstreamAuthLog: [String] {
        let text = (try? String(contentsOfFile: state + "/oauth.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Every secret this endpoint knows or issued: none may appear in a log or transcript.
    var allSecrets: [String] {
        var secrets = [clientSecret, initialRefreshToken, currentRefreshToken] + issuedTokens
        for file in [appKey, directory.appendingPathComponent("sa-key.pem").path] {
            // A line from the middle of each private key.
            let lines = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
            if lines.count > 3 { secrets.append(String(lines[lines.count / 2])) }
        }
        return secrets.filter { !$0.isEmpty }
    }

    func writeSecret(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
    }

    private static func openssl(_ arguments: [String]) throws {
        let run = try ToolRun.run("/usr/bin/openssl", arguments)
        guard run.status == 0 else { throw UpstreamProcessError.didNotStart("openssl: \(run.output)") }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

extension OAuthEndpointProcess {
    /// Upstream connections closed so far (the OAuth upstream logs each).
    var upstreamConnectionsClosed: Int {
        let text = (try? String(contentsOfFile: state + "/connections.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").count
    }
}
