import Glibc
import Testing
@testable import SmarthostCore

@Suite struct ReactorTCPConnectorTests {
    @Test func connectsToAListener() throws {
        let loop = try EventLoop()
        let listener = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        defer { listener.close() }
        var outcome: Result<Int32, ConnectError>?
        TCPConnector.connect(loop: loop, to: listener.address, timeoutMilliseconds: 2000) { result in
            outcome = result
            loop.stop()
        }
        loop.schedule(afterMilliseconds: 5000) { loop.stop() }
        loop.run()
        let fd = try #require(try outcome?.get())
        #expect(fd >= 0)
        close(fd)
    }

    @Test func refusedConnectionSaysSoAndSuggestsTheCause() throws {
        let loop = try EventLoop()
        // Bind then close: the port is (almost certainly) free and nothing listens on it.
        let probe = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let address = probe.address
        probe.close()
        var outcome: Result<Int32, ConnectError>?
        TCPConnector.connect(loop: loop, to: address, timeoutMilliseconds: 2000) { result in
            outcome = result
            loop.stop()
        }
        loop.schedule(afterMilliseconds: 5000) { loop.stop() }
        loop.run()
        guard case .failure(let error) = outcome else {
            Issue.record("expected a refusal, got \(String(describing: outcome))")
            return
        }
        #expect(!error.timedOut)
        #expect(error.description.contains("Connection refused"))
        #expect(error.description.contains("\(address)"))
    }

    @Test func resolverAnswersLiteralsWithoutTheWorkerAndNamesWithIt() throws {
        let loop = try EventLoop()
        let resolver = HostResolver(loop: loop)
        defer { resolver.stop() }
        var literal: [SocketAddress] = []
        resolver.resolve(host: "[::1]", port: 25) { literal = (try? $0.get()) ?? [] }
        #expect(literal.map(\.description) == ["[::1]:25"])
        var named: [SocketAddress] = []
        resolver.resolve(host: "localhost", port: 587) { result in
            named = (try? result.get()) ?? []
            loop.stop()
        }
        loop.schedule(afterMilliseconds: 5000) { loop.stop() }
        loop.run()
        #expect(named.contains { $0.description == "127.0.0.1:587" })
    }
}
