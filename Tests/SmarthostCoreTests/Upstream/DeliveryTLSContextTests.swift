import Foundation
import Testing
@testable import SmarthostCore

/// A route's TLS client context (its CA bundle read from disk) is built on a worker thread
/// when the configuration is made, so the event loop never reads the bundle itself.
@Suite struct DeliveryTLSContextTests {
    static func config(caFile: String?, orgCAFile: String? = nil) -> RelayConfig {
        var config = RelayConfig(hostname: "relay.test", defaultRoute: RouteSettings(
            host: "smtp.example.com", port: 587, tls: .starttls, domain: "relay.test", caFile: caFile))
        if let orgCAFile {
            config.orgs = [OrgSetting(id: "acme", route: .custom(RouteSettings(
                host: "smtp.acme.example", port: 465, tls: .implicit, domain: "relay.test", caFile: orgCAFile)),
                senders: [])]
        }
        return config
    }

    static func copyOfTheTestCA() throws -> String {
        let path = NSTemporaryDirectory() + "smarthost-ca-\(UUID().uuidString).pem"
        try FileManager.default.copyItem(atPath: TestCertificates.shared.caCertificate, toPath: path)
        return path
    }

    @Test func contextsAreBuiltBeforeTheLoopAsksForThem() throws {
        let routeCA = try Self.copyOfTheTestCA()
        let orgCA = try Self.copyOfTheTestCA()
        let environment = DeliveryEnvironment(config: Self.config(caFile: routeCA, orgCAFile: orgCA))
        #expect(eventually(timeout: 10) { environment.tlsContextsBeingBuilt == 0 })
        // Gone from disk: only a context built ahead can still be handed out.
        try FileManager.default.removeItem(atPath: routeCA)
        try FileManager.default.removeItem(atPath: orgCA)
        let first = try environment.tlsContext(caFile: routeCA)
        #expect(try environment.tlsContext(caFile: routeCA) === first, "one context per CA bundle")
        #expect(try environment.tlsContext(caFile: orgCA) !== first)
    }

    /// The system trust store is loaded ahead as well when a TLS route uses it.
    @Test func systemTrustStoreContextIsBuiltAhead() throws {
        let environment = DeliveryEnvironment(config: Self.config(caFile: nil))
        #expect(eventually(timeout: 10) { environment.tlsContextsBeingBuilt == 0 })
        #expect(environment.tlsContextsBuilt == 1)
        _ = try environment.tlsContext(caFile: nil)
    }

    /// A bundle that cannot be read fails the attempt with the file's error, and is read
    /// again (on the worker) for the next attempt: fixing the file needs no reload.
    @Test func aBrokenBundleFailsTheAttemptAndIsReadAgainLater() throws {
        let path = NSTemporaryDirectory() + "smarthost-ca-\(UUID().uuidString).pem"
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = DeliveryEnvironment(config: Self.config(caFile: path))
        #expect(throws: TLSError.self) { try environment.tlsContext(caFile: path) }
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: TestCertificates.shared.caCertificate, toPath: path)
        #expect(eventually(timeout: 10) { (try? environment.tlsContext(caFile: path)) != nil })
    }
}
