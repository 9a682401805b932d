import Foundation
import Testing
@testable import SmarthostCore

/// `UpstreamConnectionContract` run against the Graph connection: the second transport keeps
/// the seam's promises. The POST and the token fetch are injected (what Graph answers is
/// scripted per request; `GraphEndToEndTests` runs the same connection over real libcurl).
@Suite(.serialized) struct GraphConnectionContractTests {
    /// Answers POSTs in order from `statuses` (the last repeats) and counts them.
    final class ScriptedGraph: @unchecked Sendable {
        private let lock = NSLock()
        private var statuses: [Int]
        private var posts = 0

        init(_ statuses: [Int]) { self.statuses = statuses }

        func answer() -> Result<CurlHTTPClient.Response, CurlHTTPClient.TransportError> {
            lock.lock()
            defer { lock.unlock() }
            posts += 1
            let status = statuses.count > 1 ? statuses.removeFirst() : statuses[0]
            return .success(CurlHTTPClient.Response(status: status, body: []))
        }

        var postCount: Int { lock.lock(); defer { lock.unlock() }; return posts }
    }

    /// Token fetches so far; the n-th fetch sees n.
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
        var count: Int { lock.lock(); defer { lock.unlock() }; return value }
    }

    static let settings = OAuth2Settings(
        provider: .microsoft,
        grant: .clientSecret(clientID: "app", secret: Secret(revealed: "contract-secret", origin: "t")),
        tokenURL: OAuth2Settings.microsoftTokenURL(tenant: "contoso.example"),
        scope: "https://graph.microsoft.com/.default")

    static func target() -> UpstreamTarget {
        var target = UpstreamTarget(host: "graph.microsoft.com", port: 443, caFile: nil, timeoutMilliseconds: 5000,
                                    parameters: UpstreamParameters(ehloName: "relay.test", tlsMode: .implicit,
                                                                   credentials: UpstreamCredentials(username: "alerts@contoso.example", password: "")),
                                    oauth2: settings, transport: .graph)
        target.graphURL = GraphRequest.defaultURL
        return target
    }

    /// Runs the contract with `graph` answering and the n-th token fetch (from 1) delayed by
    /// `tokenDelays[n]` milliseconds.
    static func run(_ graph: ScriptedGraph, messages: [String], tokenDelays: [Int: UInt32] = [:],
                    closeAfterSendMilliseconds: Int64? = nil) throws -> (contract: UpstreamConnectionContract, result: (seen: [UpstreamConnectionContract.Seen], sent: [SpoolID], broken: [String]), fetches: Int) {
        let runner = try ControlLoopThread()
        let fetches = Counter()
        let tokens = OAuth2TokenBroker(loop: runner.loop, fetch: { _ in
            let n = fetches.next()
            if let delay = tokenDelays[n] { usleep(delay * 1000) }
            return .success(OAuth2Token(accessToken: Secret(revealed: "token-\(n)", origin: "t"), expiresIn: 3600))
        })
        runner.start()
        defer { runner.stop { tokens.stop() } }
        let workers = GraphWorkerPool()
        let target = Self.target()
        let contract = UpstreamConnectionContract(runner: runner, messages: messages.map(UpstreamConnectionContract.message),
                                                  closeAfterSendMilliseconds: closeAfterSendMilliseconds) { owner in
            GraphConnection(serial: 1, target: target, loop: runner.loop, tokens: tokens, workers: workers,
                            post: { _, _, _, _, _ in graph.answer() }, owner: owner)
        }
        let result = contract.result()
        return (contract, result, fetches.count)
    }

    @Test func graphTakesOneMessageAtATimeAndClosesOnceLast() throws {
        let graph = ScriptedGraph([202])
        let run = try Self.run(graph, messages: ["one", "two", "three"])
        #expect(run.result.broken.isEmpty, "\(run.result.broken)")
        #expect(UpstreamConnectionContractTests.readiesAndResults(run.result.seen)
                == ["ready", "delivered", "ready", "delivered", "ready", "delivered", "ready", "closed"])
        #expect(graph.postCount == 3)
        #expect(run.fetches == 1)
    }

    @Test func a401FetchesOneFreshTokenAndSendsAgain() throws {
        let graph = ScriptedGraph([401, 202])
        let run = try Self.run(graph, messages: ["refused once"])
        #expect(run.result.broken.isEmpty, "\(run.result.broken)")
        #expect(UpstreamConnectionContractTests.readiesAndResults(run.result.seen) == ["ready", "delivered", "ready", "closed"])
        #expect(graph.postCount == 2)
        #expect(run.fetches == 2)
    }

    /// After a 401 the message waits for a fresh token with no request in flight: closed then,
    /// it was not sent (Graph refused it), so a retry cannot duplicate it.
    @Test func closedWhileTheFreshTokenIsFetchedTheMessageWasNotSent() throws {
        let graph = ScriptedGraph([401, 202])
        let run = try Self.run(graph, messages: ["closed in the refetch"], tokenDelays: [2: 1500],
                               closeAfterSendMilliseconds: 400)
        #expect(run.result.broken.isEmpty, "\(run.result.broken)")
        #expect(UpstreamConnectionContractTests.readiesAndResults(run.result.seen) == ["ready", "not delivered", "closed"])
        let results = run.contract.results
        #expect(results.count == 1)
        if case .notSent? = results.first {} else { Issue.record("a message Graph refused was reported as \(results)") }
        #expect(graph.postCount == 1)
    }

    /// Closed while the POST is out: Graph may have the message, and says so.
    @Test func closedWithTheRequestInFlightMayHaveBeenDelivered() throws {
        let graph = ScriptedGraph([202])
        let runner = try ControlLoopThread()
        let tokens = OAuth2TokenBroker(loop: runner.loop, fetch: { _ in
            .success(OAuth2Token(accessToken: Secret(revealed: "token", origin: "t"), expiresIn: 3600))
        })
        runner.start()
        defer { runner.stop { tokens.stop() } }
        let target = Self.target()
        let contract = UpstreamConnectionContract(runner: runner, messages: [UpstreamConnectionContract.message("in flight")],
                                                  closeAfterSendMilliseconds: 200) { owner in
            GraphConnection(serial: 1, target: target, loop: runner.loop, tokens: tokens, workers: GraphWorkerPool(),
                            post: { _, _, _, _, _ in usleep(1_000_000); return graph.answer() }, owner: owner)
        }
        let result = contract.result()
        #expect(result.broken.isEmpty, "\(result.broken)")
        #expect(UpstreamConnectionContractTests.readiesAndResults(result.seen) == ["ready", "not delivered", "closed"])
        let results = runner.sync { contract.results }
        guard case .transaction(let transaction)? = results.first else {
            Issue.record("expected a transaction result, got \(results)")
            return
        }
        #expect(transaction.failure?.mayHaveBeenDelivered == true)
    }
}
