import Testing
@testable import SmarthostCore

/// Issue 19, item 5: a fair share per client by default, and room kept for the Unix
/// socket's clients, decided as a value.
@Suite struct ConnectionAdmissionTests {
    @Test func theDefaultShareIsATenthOfTheLimitAtLeastTen() throws {
        #expect(RelayConfig.Limits().connectionsPerClient == 100)
        #expect(RelayConfig.Limits.defaultConnectionsPerClient(maxConnections: 1000) == 100)
        #expect(RelayConfig.Limits.defaultConnectionsPerClient(maxConnections: 30) == 10)
        #expect(RelayConfig.Limits.defaultConnectionsPerClient(maxConnections: 5) == 5)
        var limits = RelayConfig.Limits()
        limits.maxConnectionsPerClient = 0
        #expect(limits.connectionsPerClient == 0, "0 still turns it off")
        limits.maxConnectionsPerClient = 7
        #expect(limits.connectionsPerClient == 7)
        let route = "default:\n  host: smtp.example.com\n  port: 587\n"
        #expect(try ConfigTestSupport.parse(route).limits.connectionsPerClient == 100)
        #expect(try ConfigTestSupport.parse("limits:\n  max_connections: 200\n" + route).limits.connectionsPerClient == 20)
        #expect(try ConfigTestSupport.parse("limits:\n  max_connections_per_client: 0\n" + route).limits.connectionsPerClient == 0)
    }

    /// With the defaults: the 100th connection of one address is admitted, the 101st is not,
    /// and another address, and a uid, still get in.
    @Test func oneClientAtAndPastTheDefaultShare() {
        let limits = RelayConfig.Limits()
        var admission = ConnectionAdmission(maxConnections: limits.maxConnections, perClient: limits.connectionsPerClient,
                                            unixReserve: limits.unixReserve)
        for _ in 0..<99 { admission.opened(key: "127.0.0.1", isUnix: false) }
        #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .admit, "the 100th")
        admission.opened(key: "127.0.0.1", isUnix: false)
        #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .clientFull(firstOfBurst: true), "the 101st")
        #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .clientFull(firstOfBurst: false), "logged once")
        #expect(admission.decide(key: "127.0.0.2", isUnix: false) == .admit)
        #expect(admission.decide(key: "uid=1001", isUnix: true) == .admit)
        admission.closed(key: "127.0.0.1", isUnix: false)
        #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .admit, "a slot freed")
        admission.opened(key: "127.0.0.1", isUnix: false)
        #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .clientFull(firstOfBurst: true), "a new burst")
    }

    /// Ten TCP clients of 90 fill every slot TCP may take; the Unix socket still has its 100.
    @Test func tcpCannotTakeTheUnixSocketsReserve() {
        var admission = ConnectionAdmission(maxConnections: 1000, perClient: 100, unixReserve: 100)
        for client in 0..<10 {
            for _ in 0..<90 { admission.opened(key: "127.0.0.\(client + 2)", isUnix: false) }
        }
        #expect(admission.tcp == 900)
        #expect(admission.decide(key: "127.0.0.99", isUnix: false) == .poolFull)
        #expect(admission.decide(key: "uid=1001", isUnix: true) == .admit)
        for _ in 0..<100 { admission.opened(key: "uid=\(admission.total)", isUnix: true) }
        #expect(admission.total == 1000)
        #expect(admission.decide(key: "uid=1", isUnix: true) == .poolFull, "max_connections still bounds all")
    }

    @Test func withoutAUnixSocketTCPHasThePool() {
        var admission = ConnectionAdmission(maxConnections: 3, perClient: 0, unixReserve: 0)
        for _ in 0..<3 {
            #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .admit)
            admission.opened(key: "127.0.0.1", isUnix: false)
        }
        #expect(admission.decide(key: "127.0.0.1", isUnix: false) == .poolFull)
        // A reserve as large as the pool leaves TCP one slot rather than none.
        let tiny = ConnectionAdmission(maxConnections: 1, perClient: 0, unixReserve: 1)
        var copy = tiny
        #expect(copy.decide(key: "127.0.0.1", isUnix: false) == .admit)
    }
}
