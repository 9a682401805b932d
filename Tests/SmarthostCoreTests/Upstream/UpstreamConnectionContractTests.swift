import Foundation
import Testing
@testable import SmarthostCore

/// `UpstreamConnectionContract` run against the real SMTP connection (`DeliveryConnection`)
/// with real upstreams on loopback — aiosmtpd, and the faulty upstream for what no real
/// server does on demand — and against the driver tests' fake, so the fake the driver is
/// tested with keeps the same promises.
@Suite(.serialized) struct UpstreamConnectionContractTests {
    final class SMTPSide: @unchecked Sendable {
        let runner: ControlLoopThread
        let resolver: HostResolver
        let tokens: OAuth2TokenBroker

        init() throws {
            runner = try ControlLoopThread()
            resolver = HostResolver(loop: runner.loop)
            tokens = OAuth2TokenBroker(loop: runner.loop)
            runner.start()
        }

        func contract(port: UInt16, messages: [UpstreamMessage], closeAfterSendMilliseconds: Int64? = nil) -> UpstreamConnectionContract {
            let target = UpstreamTarget(host: "127.0.0.1", port: port, caFile: nil, timeoutMilliseconds: 10_000,
                                        parameters: UpstreamParameters(ehloName: "relay.test", tlsMode: .none))
            let loop = runner.loop
            let resolver = self.resolver
            let tokens = self.tokens
            return UpstreamConnectionContract(runner: runner, messages: messages,
                                              closeAfterSendMilliseconds: closeAfterSendMilliseconds) { owner in
                DeliveryConnection(serial: 1, target: target, loop: loop, resolver: resolver,
                                   tlsContext: { try TLSContext.client() }, tokens: tokens, owner: owner)
            }
        }

        func finish() {
            runner.stop { [resolver, tokens] in
                resolver.stop()
                tokens.stop()
            }
        }
    }

    static let threeSent: [UpstreamConnectionContract.Seen] = [.ready, .ready, .ready, .ready]

    static func readiesAndResults(_ seen: [UpstreamConnectionContract.Seen]) -> [String] {
        seen.map { if case .finished(_, let delivered) = $0 { return delivered ? "delivered" : "not delivered" }; return "\($0)" }
    }

    // MARK: SMTP

    @Test func smtpTakesOneMessageAtATimeAndClosesOnceLast() throws {
        let upstream = try UpstreamProcess(mode: .plain)
        defer { upstream.stop() }
        let side = try SMTPSide()
        defer { side.finish() }
        let contract = side.contract(port: upstream.port, messages: ["one", "two", "three"].map(UpstreamConnectionContract.message))
        let result = contract.result()
        #expect(result.broken.isEmpty, "\(result.broken)")
        #expect(Self.readiesAndResults(result.seen) == ["ready", "delivered", "ready", "delivered", "ready", "delivered",
                                                        "ready", "closed"])
        let subjects = upstream.waitForMessages(3).map { $0.content.contains("Subject: two") ? "two" : $0.content.contains("Subject: three") ? "three" : "one" }
        #expect(subjects == ["one", "two", "three"])
    }

    @Test func smtpThatCannotConnectReportsOnlyItsClose() throws {
        let port = try PrometheusScrapeEndToEndTests.freePort()
        let side = try SMTPSide()
        defer { side.finish() }
        let contract = side.contract(port: port, messages: [UpstreamConnectionContract.message("never")])
        let result = contract.result()
        #expect(result.broken.isEmpty, "\(result.broken)")
        #expect(result.seen == [.closed(failed: true)])
        #expect(side.runner.sync { contract.closeFailure?.step } == .connect)
    }

    @Test func smtpCutInTheMiddleOfAMessageReportsItBeforeItsClose() throws {
        let upstream = try UpstreamProcess(fault: "cut-in-data")
        defer { upstream.stop() }
        let side = try SMTPSide()
        defer { side.finish() }
        let contract = side.contract(port: upstream.port, messages: [UpstreamConnectionContract.message("cut")])
        let result = contract.result()
        #expect(result.broken.isEmpty, "\(result.broken)")
        #expect(Self.readiesAndResults(result.seen).prefix(2) == ["ready", "not delivered"], "\(result.seen)")
        #expect(result.seen.count == 3 && result.seen.last.map { if case .closed = $0 { true } else { false } } == true, "\(result.seen)")
    }

    @Test func smtpClosedWithAMessageInHandReportsItThenCloses() throws {
        let upstream = try UpstreamProcess(fault: "stall-data")
        defer { upstream.stop() }
        let side = try SMTPSide()
        defer { side.finish() }
        let contract = side.contract(port: upstream.port, messages: [UpstreamConnectionContract.message("stalled")],
                                     closeAfterSendMilliseconds: 300)
        let result = contract.result()
        #expect(result.broken.isEmpty, "\(result.broken)")
        #expect(Self.readiesAndResults(result.seen) == ["ready", "not delivered", "closed"], "\(result.seen)")
    }

    // MARK: The driver tests' fake

    @Test func theFakeKeepsTheSamePromises() throws {
        let runner = try ControlLoopThread()
        runner.start()
        defer { runner.stop() }
        func fake(failAtStart: UpstreamFailure? = nil, holds: Bool = false) -> (any UpstreamConnectionOwner) -> any UpstreamConnection {
            { owner in
                let connection = FakeUpstreamConnection(serial: 1, target: UpstreamTarget(
                    host: "127.0.0.1", port: 2525, caFile: nil, timeoutMilliseconds: 1000,
                    parameters: UpstreamParameters(ehloName: "relay.test", tlsMode: .none)), owner: owner)
                connection.autopilot = runner.loop
                connection.failAtStart = failAtStart
                connection.holdsMessages = holds
                return connection
            }
        }
        let messages = ["one", "two", "three"].map(UpstreamConnectionContract.message)
        let delivering = UpstreamConnectionContract(runner: runner, messages: messages, make: fake()).result()
        #expect(delivering.broken.isEmpty, "\(delivering.broken)")
        #expect(Self.readiesAndResults(delivering.seen) == ["ready", "delivered", "ready", "delivered", "ready", "delivered",
                                                            "ready", "closed"])
        let refused = UpstreamConnectionContract(runner: runner, messages: messages,
                                                 make: fake(failAtStart: DeliveryDriverTests.refused)).result()
        #expect(refused.broken.isEmpty && refused.seen == [.closed(failed: true)], "\(refused)")
        let cut = UpstreamConnectionContract(runner: runner, messages: messages, closeAfterSendMilliseconds: 10,
                                             make: fake(holds: true)).result()
        #expect(cut.broken.isEmpty, "\(cut.broken)")
        #expect(Self.readiesAndResults(cut.seen) == ["ready", "not delivered", "closed"])
    }
}
