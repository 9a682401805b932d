import Foundation
@testable import SmarthostCore

/// `Support/test_upstream.py` (aiosmtpd) as a real upstream for one test: an ephemeral
/// loopback port, its own record directory, and a pipe on its stdin so it ends with us.
final class ProbeUpstream: @unchecked Sendable {
    let port: UInt16
    let outdir: String
    private let process: Process
    private let input: Pipe

    struct StartFailure: Error, CustomStringConvertible {
        var output: String
        var description: String { "test_upstream.py did not start: \(output)" }
    }

    /// - Parameters:
    ///   - mode: "plain", "starttls" or "implicit".
    ///   - identity: the certificate the server presents (TLS modes).
    ///   - auth: "user:password" the server requires.
    init(mode: String, identity: TestCertificates.Identity? = nil, auth: String? = nil,
         extra: [String] = [], file: String = #filePath) throws {
        outdir = NSTemporaryDirectory() + "smarthost-probe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: outdir, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/test_upstream.py").path
        var arguments = [script, "--mode", mode, "--outdir", outdir]
        if let identity { arguments += ["--cert", identity.certificate, "--key", identity.key] }
        if let auth { arguments += ["--auth", auth] }
        arguments += extra
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = arguments
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // READY port=N is the first line; EOF before it means the script died.
        var text = ""
        let reader = output.fileHandleForReading
        while !text.contains("\n") {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("READY port=") }),
              let port = UInt16(line.dropFirst("READY port=".count))
        else {
            process.terminate()
            throw StartFailure(output: text)
        }
        self.port = port
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: outdir)
    }

    /// The JSON envelopes of the messages the server stored, in order.
    func envelopes() throws -> [[String: Any]] {
        try FileManager.default.contentsOfDirectory(atPath: outdir).filter { $0.hasSuffix(".json") }.sorted().map {
            let data = try Data(contentsOf: URL(fileURLWithPath: outdir + "/" + $0))
            return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        }
    }

    func message(_ number: Int) throws -> String {
        try String(contentsOfFile: outdir + String(format: "/%06d.eml", number), encoding: .utf8)
    }

    var authLog: String {
        (try? String(contentsOfFile: outdir + "/auth.log", encoding: .utf8)) ?? ""
    }
}

/// A route to a loopback upstream, as a test wants it.
enum ProbeRoutes {
    static let password = "Pr0be-S3cret-pw"

    static func route(port: UInt16, tls: TLSMode, host: String = "127.0.0.1", username: String? = nil,
                      password: String = ProbeRoutes.password, caFile: String? = TestCertificates.shared.caCertificate,
                      timeoutMs: Int64 = 5_000, from: String? = "alerts@acme.example") -> RouteSettings {
        RouteSettings(host: host, port: port, tls: tls, domain: "relay.test", timeoutMs: timeoutMs,
                      username: username, password: username.map { _ in Secret(revealed: password, origin: "inline") },
                      from: from, fromName: from.map { _ in "ACME Robots" }, caFile: caFile)
    }

    static func request(_ route: RouteSettings, to recipient: String = "ops@example.test") -> ProbeRequest {
        ProbeRequest(route: route, recipient: recipient, hostname: "relay.test", org: "acme")
    }

    /// The transcript as `smarthost test` prints it.
    static func lines(_ report: ProbeReport) -> [String] {
        report.transcript.map(\.description)
    }
}
