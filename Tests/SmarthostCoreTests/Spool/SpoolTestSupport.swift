import Foundation
@testable import SmarthostCore

/// A spool root in a fresh temporary directory, removed by `remove()`.
struct SpoolTestDirectory {
    let root: String

    init() {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("spool-test-\(UUID().uuidString)").path
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func names(_ sub: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + sub)) ?? []).sorted()
    }

    func bytes(_ relative: String) -> [UInt8]? {
        FileManager.default.contents(atPath: root + "/" + relative).map { Array($0) }
    }

    func write(_ relative: String, _ bytes: [UInt8]) {
        _ = FileManager.default.createFile(atPath: root + "/" + relative, contents: Data(bytes))
    }

    func mode(_ relative: String) -> Int {
        var info = stat()
        guard stat(root + "/" + relative, &info) == 0 else { return -1 }
        return Int(info.st_mode & 0o7777)
    }

    func inode(_ relative: String) -> UInt64 {
        var info = stat()
        guard stat(root + "/" + relative, &info) == 0 else { return 0 }
        return UInt64(info.st_ino)
    }
}

/// Results gathered from committer-thread completions.
final class SpoolTestResults: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Result<SpoolID, SpoolError>] = []
    private let done = DispatchSemaphore(value: 0)

    func add(_ result: Result<SpoolID, SpoolError>) {
        lock.withLock { stored.append(result) }
        done.signal()
    }

    func wait(for count: Int) -> [Result<SpoolID, SpoolError>] {
        for _ in 0..<count { _ = done.wait(timeout: .now() + 30) }
        return lock.withLock { stored }
    }
}

enum SpoolTestData {
    static func envelope(_ id: SpoolID, recipients: [String] = ["a@example.com", "b@example.com"]) -> SpoolEnvelope {
        SpoolEnvelope(id: id, receivedAt: 1_700_000_000, sender: "app@acme.example", recipients: recipients,
                      org: "acme", layer: "org", route: "smtp.gmail.com:587",
                      heloName: "localhost", clientAddress: "127.0.0.1")
    }

    /// A message with CRLF line ends, `lines` lines long, starting with Received.
    static func message(lines: Int = 20, tag: String = "") -> [UInt8] {
        var text = "Received: from localhost ([127.0.0.1]) by relay; Tue, 1 Jan 2030 00:00:00 +0000\r\n"
        text += "Subject: test \(tag)\r\n\r\n"
        for index in 0..<lines { text += "line \(index) \(tag) \u{e9}t\u{e9} %0A =\r\n" }
        return Array(text.utf8)
    }

    /// Receives and commits one message, waiting for the committer.
    static func store(_ spool: Spool, _ content: [UInt8], envelope: ((SpoolID) -> SpoolEnvelope)? = nil) throws -> Result<SpoolID, SpoolError> {
        let incoming = try spool.begin()
        incoming.append(content)
        let results = SpoolTestResults()
        let env = envelope?(incoming.id) ?? SpoolTestData.envelope(incoming.id)
        spool.commit(incoming, envelope: env) { results.add($0) }
        return results.wait(for: 1)[0]
    }

    static func storeOK(_ spool: Spool, _ content: [UInt8]) throws -> SpoolID {
        try store(spool, content).get()
    }
}
