import Synchronization
import Testing
@testable import SmarthostCore

/// The session's clock in tests: it moves only when told.
final class ManualClock: Sendable {
    private let milliseconds = Mutex<Int64>(1_000_000)

    var now: Int64 { milliseconds.withLock { $0 } }

    func advance(_ by: Int64) {
        milliseconds.withLock { $0 += by }
    }

    var read: @Sendable () -> Int64 { { [self] in now } }
}

extension UpstreamTarget {
    /// mx.example:25 with a 30 s step timeout.
    static func testing(_ parameters: UpstreamParameters, host: String = "mx.example", port: UInt16 = 25,
                        timeout: Int64 = 30_000, greetingTimeout: Int64? = nil,
                        oauth2: OAuth2Settings? = nil) -> UpstreamTarget {
        var target = UpstreamTarget(host: host, port: port, caFile: nil, timeoutMilliseconds: timeout,
                                    parameters: parameters, oauth2: oauth2)
        target.greetingTimeoutMilliseconds = greetingTimeout
        return target
    }
}

extension UpstreamSession {
    static let testAddress = SocketAddress(ip: "192.0.2.25", port: 25)!

    /// Resolves to one address and connects; for implicit TLS the handshake completes too.
    /// Returns the actions of the last step (the greeting is next).
    mutating func openForTesting() -> [UpstreamAction] {
        #expect(start() .contains(.resolve(host: target.host, port: target.port)))
        #expect(resolved(.success([Self.testAddress])).contains(.connect(Self.testAddress)))
        let actions = connected()
        guard parameters.tlsMode == .implicit else { return actions }
        #expect(actions.contains(.startTLS))
        return tlsEstablished()
    }

    /// A fresh grant, as the broker hands it out.
    static func grant(_ token: String, fetched: Bool = true) -> OAuth2TokenBroker.Grant {
        OAuth2TokenBroker.Grant(token: Secret(revealed: token, origin: "test"), fetched: fetched, expiresIn: 3600)
    }
}

/// The actions without the timer ones, which most dialogue tests do not care about.
func withoutTimers(_ actions: [UpstreamAction]) -> [UpstreamAction] {
    actions.filter { if case .armTimer = $0 { false } else { true } }
}
