import Foundation
import Logging
import Testing
@testable import SmarthostCore

/// The hand-off of accepted mail belongs to the server, not to a configuration generation:
/// a reload that swaps the context keeps delivering what the new one accepts, with nothing
/// copied by hand.
@Suite struct InboundServerHandOffTests {
    @Test func aReplacedContextHandsAcceptedMailToTheServersReceiver() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        defer { spool.shutdown() }
        let loop = try EventLoop()
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let config = RelayConfig(hostname: "relay.test",
                                 defaultRoute: RouteSettings(host: "smtp.example.com", port: 587, tls: .starttls, domain: "relay.test"))
        let server = InboundServer(loop: loop, context: InboundContext(loop: loop, spool: spool, config: config, logger: logger),
                                   logger: logger)
        var received: [SpoolID] = []
        server.onAccepted = { envelope, _ in received.append(envelope.id) }

        let reloaded = InboundContext(loop: loop, spool: spool, config: config, logger: logger)
        server.replaceContext(reloaded)
        let envelope = SpoolTestData.envelope(SpoolIDGenerator().next())
        reloaded.messageAccepted(envelope, content: nil, client: .address(bytes: [127, 0, 0, 1], text: "127.0.0.1"))
        #expect(received == [envelope.id])
        reloaded.delegate?.transactionRejected()
        #expect(server.rejectedCount == 1)
    }
}
