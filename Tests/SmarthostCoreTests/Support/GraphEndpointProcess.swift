import Foundation

/// The test Graph endpoint (`graph_endpoint.py`, HTTPS on loopback with the test CA's
/// localhost certificate): it accepts a mailbox's messages only with a bearer token that
/// mailbox's tenant (an `OAuthEndpointProcess`) issued, decodes the base64 MIME and keeps it.
final class GraphEndpointProcess: @unchecked Sendable {
    let directory: URL
    private(set) var port: UInt16 = 0
    private var process: Process?
    private var stdin: Pipe?

    var url: String { "https://localhost:\(port)" }

    /// `tenants`: mailbox → the token endpoint whose tokens may send as it.
    init(tenants: [String: OAuthEndpointProcess], options: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-graph-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        let certificates = TestCertificates.shared
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("graph_endpoint.py").path
        process.arguments = [script, "--cert", certificates.localhost.certificate, "--key", certificates.localhost.key,
                             "--state", directory.path]
            + tenants.sorted { $0.key < $1.key }.flatMap { ["--tenant", "\($0.key)=\($0.value.state)"] } + options
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
        port = parsed
        self.process = process
        stdin = input
    }

    func stop() {
        try? stdin?.fileHandleForWriting.close()
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        process = nil
    }

    /// One line per request: `mailbox=… status=… msgid=… retry_after=… t=…`.
    var requests: [String] {
        let text = (try? String(contentsOfFile: directory.path + "/requests.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    func requests(status: Int) -> [String] { requests.filter { $0.contains(" status=\(status) ") } }

    /// The MIME of every accepted message, in the order accepted.
    var messages: [Data] {
        let dir = directory.path + "/messages"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.compactMap { FileManager.default.contents(atPath: dir + "/" + $0) }
    }

    func waitForMessages(_ count: Int, timeout: TimeInterval = 30) -> [Data] {
        _ = eventually(timeout: timeout) { messages.count >= count }
        return messages
    }

    /// A field of a request line (`t`, `msgid`, …).
    static func field(_ name: String, in line: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
