import Foundation

/// A real upstream SMTP server for end-to-end delivery tests: `test_upstream.py` (Debian's
/// aiosmtpd) on an ephemeral loopback port, recording what it received into a directory.
final class UpstreamProcess: @unchecked Sendable {
    enum Mode: String { case plain, starttls, implicit }

    struct Received {
        var content: String
        var mailFrom: String
        var recipients: [String]
        var tls: Bool
        var authUser: String?
        var helo: String?
        /// When the faulty upstream stored it (Unix seconds); nil from `test_upstream.py`.
        var receivedAt: Double?
        /// `--accounts`: the connection it came in (one number per connection) and the
        /// password that connection authenticated with.
        var session: Int? = nil
        var authPassword: String? = nil
    }

    let outdir: URL
    private(set) var port: UInt16 = 0
    private let process = Process()
    private let stdin = Pipe()

    static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("test_upstream.py").path
    }

    /// - Parameters:
    ///   - certificate: a leaf from `TestCertificates.shared` for TLS modes.
    ///   - extra: fault flags such as `["--data-reply", "451 4.3.0 later:1"]`.
    init(mode: Mode, certificate: (certificate: String, key: String)? = nil, auth: String? = nil,
         port: UInt16 = 0, extra: [String] = []) throws {
        outdir = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-upstream-\(UUID().uuidString)")
        var arguments = [Self.scriptPath, "--mode", mode.rawValue, "--outdir", outdir.path, "--port", "\(port)"]
        if let certificate { arguments += ["--cert", certificate.certificate, "--key", certificate.key] }
        if let auth { arguments += ["--auth", auth] }
        arguments += extra
        try launch(arguments)
    }

    /// The scripted faulty upstream (`faulty_upstream.py --fault NAME`); `extra` are its
    /// other flags (`--limit 10 --window 5`…), `host`/`port` where it listens.
    init(fault: String, extra: [String] = [], host: String = "127.0.0.1", port: UInt16 = 0) throws {
        outdir = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-upstream-\(UUID().uuidString)")
        let script = URL(fileURLWithPath: Self.scriptPath).deletingLastPathComponent().appendingPathComponent("faulty_upstream.py").path
        try launch([script, "--fault", fault, "--outdir", outdir.path, "--host", host, "--port", "\(port)"] + extra)
    }

    private func launch(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = arguments
        process.standardInput = stdin
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The script prints `READY port=N` once it listens.
        let handle = out.fileHandleForReading
        var text = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, !text.contains("\n") {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let range = text.range(of: #"READY port=(\d+)"#, options: .regularExpression),
              let parsed = UInt16(text[range].split(separator: "=")[1]) else {
            throw UpstreamProcessError.didNotStart(text)
        }
        self.port = parsed
    }

    /// Messages received so far, in arrival order.
    func received() -> [Received] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: outdir.path)) ?? [])
            .filter { $0.hasSuffix(".eml") }.sorted()
        return files.compactMap { name in
            let base = outdir.appendingPathComponent(String(name.dropLast(4)))
            guard let content = try? String(contentsOf: base.appendingPathExtension("eml"), encoding: .utf8) else { return nil }
            // The faulty upstream keeps no envelope file.
            let meta = (try? Data(contentsOf: base.appendingPathExtension("json")))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
            return Received(content: content, mailFrom: meta["mail_from"] as? String ?? "",
                            recipients: meta["rcpt_tos"] as? [String] ?? [], tls: meta["tls"] as? Bool ?? false,
                            authUser: meta["auth_user"] as? String, helo: meta["helo"] as? String,
                            receivedAt: meta["received_at"] as? Double, session: meta["session"] as? Int,
                            authPassword: meta["auth_password"] as? String)
        }
    }

    /// Every AUTH attempt as `tls=0|1 mechanism=X` lines.
    var authLog: [String] {
        let text = (try? String(contentsOf: outdir.appendingPathComponent("auth.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// QUIT commands the faulty upstream has received (it writes each before answering).
    var quitCount: Int { logLines("quit.log").count }

    /// Lines of one of the faulty upstream's logs (`transactions.log`, `throttled.log`,
    /// `connections.log`, `quit.log`).
    func logLines(_ name: String) -> [String] {
        let text = (try? String(contentsOf: outdir.appendingPathComponent(name), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Limit replies the faulty upstream gave (`--fault rate-limit`).
    var throttledCount: Int { logLines("throttled.log").count }

    /// Connections the faulty upstream accepted.
    var connectionCount: Int { logLines("connections.log").count }

    /// Transactions that reached MAIL FROM: accepted RCPTs, the final reply's code, RCPTs sent.
    var transactions: [(recipients: Int, result: String, tried: Int)] {
        logLines("transactions.log").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count == 4, let count = Int(words[1].dropFirst("rcpts=".count)),
                  let tried = Int(words[3].dropFirst("tried=".count)) else { return nil }
            return (count, String(words[2].dropFirst("result=".count)), tried)
        }
    }

    /// Waits until at least `count` messages arrived; returns them.
    @discardableResult
    func waitForMessages(_ count: Int, timeout: TimeInterval = 20) -> [Received] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let now = received()
            if now.count >= count { return now }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return received()
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: outdir)
    }
}

enum UpstreamProcessError: Error {
    case didNotStart(String)
}

/// Polls until `condition` holds or the timeout passes.
func eventually(timeout: TimeInterval = 20, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}
