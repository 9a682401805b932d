import Foundation
import Glibc

/// The service manager's end of sd_notify(3) for tests: an AF_UNIX datagram socket bound in
/// a temp directory; pass `NOTIFY_SOCKET=<path>` to the relay. A reader thread records every
/// datagram with its arrival time, and can act on one the instant it arrives (`onMessage`),
/// as systemd would when it marks the service started.
final class FakeNotifySocket: @unchecked Sendable {
    struct Message {
        var at: Date
        var text: String
        var fields: [String: String] {
            var out: [String: String] = [:]
            for line in text.split(separator: "\n") {
                if let eq = line.firstIndex(of: "=") { out[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
            }
            return out
        }
    }

    let path: String
    private let directory: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [Message] = []
    private var closed = false
    private var reactions: [(Message) -> Void] = []
    private var thread: Thread?

    init() throws {
        // sun_path holds 108 bytes: keep the path short.
        directory = "/tmp/sh-notify-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw FakeNotifyError.bind(errno) }
        var tv = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in readLoop() }
        self.thread = thread
        thread.start()
    }

    /// Runs on the reader thread for every datagram, before it is recorded.
    func onMessage(_ reaction: @escaping (Message) -> Void) {
        lock.withLock { reactions.append(reaction) }
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !lock.withLock({ closed }) {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { continue }
            let message = Message(at: Date(), text: String(decoding: buffer[0..<n], as: UTF8.self))
            let current = lock.withLock { reactions }
            for reaction in current { reaction(message) }
            lock.withLock { received.append(message) }
        }
    }

    var messages: [Message] { lock.withLock { received } }

    /// Waits for the first message (after index `from`) with `NAME=value` among its fields.
    @discardableResult
    func waitFor(_ field: String, _ value: String? = nil, after from: Int = 0, timeout: TimeInterval = 20) -> (index: Int, message: Message)? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            let now = messages
            for index in from..<max(from, now.count) {
                let fields = now[index].fields
                if let got = fields[field], value == nil || got == value { return (index, now[index]) }
            }
            Thread.sleep(forTimeInterval: 0.01)
        } while Date() < deadline
        return nil
    }

    deinit {
        lock.withLock { closed = true }
        while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.01) }
        close(fd)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

enum FakeNotifyError: Error {
    case bind(Int32)
}

enum SystemdTestSupport {
    /// A loopback port that was free a moment ago (bound to 0, read, closed).
    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// Connects and reads the banner; nil when nothing accepts on the port.
    static func banner(port: UInt16) -> String? {
        guard let client = try? RawSMTPClient(port: port, timeoutSeconds: 5) else { return nil }
        let reply = client.readReply()
        return reply.isEmpty ? nil : reply
    }

    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    static var supportDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Support")
    }

    /// One message through a plain SMTP dialogue; returns the reply to the end of data.
    static func submit(port: UInt16, from: String = "app@acme.example", to: [String] = ["ops@example.com"],
                       body: String = "Subject: test\r\n\r\nhello\r\n") throws -> String {
        let client = try RawSMTPClient(port: port)
        _ = client.readReply()
        client.send("EHLO app.test\r\n")
        _ = client.readReply()
        client.send("MAIL FROM:<\(from)>\r\n")
        _ = client.readReply()
        for rcpt in to {
            client.send("RCPT TO:<\(rcpt)>\r\n")
            _ = client.readReply()
        }
        client.send("DATA\r\n")
        _ = client.readReply()
        client.send(body + ".\r\n")
        let reply = client.readReply()
        client.send("QUIT\r\n")
        return reply
    }
}

/// `submit_load.py` in the background: several clients submitting until the deadline,
/// printing `ACK <token> <queue-id>` for each 250.
final class SubmitLoad {
    private let process = Process()
    private let out = Pipe()

    init(port: UInt16, threads: Int, seconds: Double) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [SystemdTestSupport.supportDirectory.appendingPathComponent("submit_load.py").path,
                             "\(port)", "\(threads)", "\(seconds)"]
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for the load to end; returns (token, queue id) per acknowledged message.
    func finish() -> [(token: String, id: String)] {
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "ACK" else { return nil }
            return (String(parts[1]), String(parts[2]))
        }
    }
}
