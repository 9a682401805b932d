import Foundation
import Testing
@testable import SmarthostCore

/// Answers STATUS at once, RETRY a little later from a timer (like a spool worker hop),
/// and never answers DELETE (to exercise the client's timeout).
private final class ScriptedHandler: ControlHandler, @unchecked Sendable {
    let loop: EventLoop
    private let lock = NSLock()
    private var seen: [ControlRequest] = []
    var requests: [ControlRequest] { lock.withLock { seen } }

    init(loop: EventLoop) { self.loop = loop }

    func handleControl(_ request: ControlRequest, reply: @escaping (ControlReply) -> Void) {
        lock.withLock { seen.append(request) }
        switch request {
        case .status: reply(.ok(ControlStatus(queued: 3, pid: 42).description))
        case .retry(let id): loop.schedule(afterMilliseconds: 20) { reply(.ok("\(id) moved")) }
        case .flush: reply(.busy("in delivery"))
        case .delete, .unquarantine, .reload, .routes, .hold, .release: break
        }
    }
}

@Suite(.serialized) struct ControlServerTests {
    let id = SpoolID("0123456789abcdefgh")!

    @Test func serverAndClientTalkOverARealUnixSocket() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler)
        runner.start()
        defer { runner.stop { server.close() } }

        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)

        let client = ControlClient(path: path, timeoutMilliseconds: 2000)
        let status = try #require(try client.send(.status))
        #expect(status.code == .ok)
        #expect(ControlStatus(parsing: status.text)?.queued == 3)
        #expect(try client.send(.retry(id)) == .ok("\(id) moved"))
        #expect(handler.requests == [.status, .retry(id)])
        // Every connection is closed after its answer.
        #expect(runner.sync { server.connectionCount } == 0)
    }

    @Test func malformedRequestsGetAnErrorWithoutReachingTheHandler() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler)
        runner.start()
        defer { runner.stop { server.close() } }

        let answer = try rawExchange(path, "DELETE ../../etc/passwd\r\n")
        #expect(answer.hasPrefix("ERROR not a queue id"))
        #expect(try rawExchange(path, "bogus\n").hasPrefix("ERROR unknown request"))
        #expect(handler.requests.isEmpty)
    }

    @Test func busyIsAskedAgainThenReturned() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler)
        runner.start()
        defer { runner.stop { server.close() } }

        let reply = try ControlClient(path: path).send(.flush(nil), busyRetries: 2, delayMilliseconds: 10)
        #expect(reply == .busy("in delivery"))
        #expect(handler.requests.count == 3)
    }

    @Test func aDaemonThatDoesNotAnswerIsATimeoutNotAFallback() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler)
        runner.start()
        defer { runner.stop { server.close() } }

        let started = Date()
        #expect(throws: ControlClientError.timedOut(path: path, milliseconds: 300)) {
            try ControlClient(path: path, timeoutMilliseconds: 300).send(.delete(id))
        }
        #expect(Date().timeIntervalSince(started) < 3)
    }

    @Test func noDaemonMeansNilForAMissingOrStaleSocket() throws {
        let path = controlSocketPath()
        #expect(try ControlClient(path: path).send(.status) == nil)

        // A socket file left by a crashed daemon: connect is refused.
        close(try UnixSocket.listen(path: path))
        #expect(access(path, F_OK) == 0)
        #expect(try ControlClient(path: path).send(.status) == nil)
        unlink(path)
    }

    @Test func closeRemovesTheSocketAndAStaleOneIsReplaced() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        // Left behind by a daemon killed with SIGKILL: the next one binds anyway.
        close(try UnixSocket.listen(path: path))
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler)
        runner.start()
        #expect(try ControlClient(path: path).send(.status)?.code == .ok)
        runner.stop { server.close() }
        #expect(access(path, F_OK) != 0)
        #expect(try ControlClient(path: path).send(.status) == nil)
    }

    @Test func refusesToReplaceAFileThatIsNotASocket() throws {
        let path = controlSocketPath()
        FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
        defer { unlink(path) }
        let loop = try EventLoop()
        #expect(throws: SystemError.self) {
            try ControlServer(loop: loop, path: path, handler: ScriptedHandler(loop: loop))
        }
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
    }

    /// Writes `text` on a fresh connection and reads the reply line.
    @Test func aClientWhoseUidIsNotAllowedIsRefused() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler, allowedUIDs: [])
        runner.start()
        defer { runner.stop { server.close() } }
        #expect(try rawExchange(path, "STATUS\n") == "ERROR permission denied for uid \(getuid())\n")
        #expect(handler.requests.isEmpty)
    }

    /// SO_PEERCRED failing (which no real client can cause on demand) must not let a
    /// client in: who it is cannot be checked.
    @Test func aClientWhoseUidCannotBeFoundIsRefused() throws {
        let path = controlSocketPath()
        let runner = try ControlLoopThread()
        let handler = ScriptedHandler(loop: runner.loop)
        let server = try ControlServer(loop: runner.loop, path: path, handler: handler, peerUID: { _ in nil })
        runner.start()
        defer { runner.stop { server.close() } }
        #expect(try rawExchange(path, "STATUS\n").hasPrefix("ERROR permission denied: cannot identify"))
        #expect(handler.requests.isEmpty)
    }

    private func rawExchange(_ path: String, _ text: String) throws -> String {
        let fd = try UnixSocket.connect(path: path, timeoutMilliseconds: 2000)
        defer { close(fd) }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 512)
        var out: [UInt8] = []
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            out += buffer[0..<count]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
