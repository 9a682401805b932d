import Foundation
import Logging
import Testing
@testable import SmarthostCore

/// Acceptance decides a message's org once: an org header that cannot be an org id is
/// ignored and said so in one short log line, never copied into the envelope.
@Suite struct InboundContextOrgHeaderTests {
    @Test func aFoldedSixtyLineHeaderIsIgnoredAndLoggedOnceShort() throws {
        let dir = SpoolTestDirectory()
        defer { dir.remove() }
        let spool = try Spool(root: dir.root)
        defer { spool.shutdown() }
        let sink = LogSink(capturing: true)
        let logger = Logger(label: "test") { LineLogHandler(label: $0, sink: sink) }
        let config = RelayConfig(
            hostname: "relay.test",
            defaultRoute: RouteSettings(host: "smtp.example.com", port: 587, tls: .starttls, domain: "relay.test"),
            orgs: [OrgSetting(id: "acme", route: .useDefault, senders: ["*@acme.example"])])
        let context = InboundContext(loop: try EventLoop(), spool: spool, config: config, logger: logger)
        let folded = (0..<60).map { "tenant-\($0)-" + String(repeating: "x", count: 970) }.joined(separator: "\r\n ")
        let headers = Array("Subject: hi\r\nX-Smarthost-Org: \(folded)\r\n\r\n".utf8)
        let id = SpoolIDGenerator().next()

        let routed = context.route(id: id, sender: "jobs@platform.example", headers: headers)
        #expect(routed.choice.orgID == nil)
        #expect(routed.route.layer == .default)
        let lines = sink.lines.filter { $0.contains("org header ignored") }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.hasPrefix("<4>org header ignored"))
        #expect(line.contains("id=\(id)") && line.contains("header=X-Smarthost-Org"))
        #expect(line.utf8.count < 400, "bounded whatever the header's size: \(line.utf8.count) bytes")

        _ = context.route(id: id, sender: "robot@acme.example", headers: Array("X-Smarthost-Org: acme\r\n\r\n".utf8))
        #expect(sink.lines.filter { $0.contains("org header ignored") }.count == 1, "a valid header logs nothing")
    }
}
