import Testing
@testable import SmarthostCore

/// Issue 19 item 1 as values: two orgs on the same hosts with the same username (SendGrid's
/// `apikey`) and each its own key get their own connections and their own route health;
/// two orgs sharing the account *and* the key share them.
@Suite struct DeliveryQueueCredentialTests {
    typealias Q = DeliveryQueueTests
    static let start = Q.start

    static func target(password: String?, source: String = "inline", username: String = "apikey") -> DeliveryTarget {
        var target = Q.target(hosts: ["smtp.sendgrid.example"])
        target.upstream.parameters.tlsMode = .starttls
        target.upstream.parameters.credentials = password.map { UpstreamCredentials(username: username, password: $0) }
        target.credentialSource = password == nil ? nil : source
        return target
    }

    /// Org `a`'s mail takes `a`, everything else `b`; one connection per route.
    static func queue(a: DeliveryTarget, b: DeliveryTarget) -> DeliveryQueue {
        let policy = DeliveryPolicy(retryMinMilliseconds: Q.minute, retryMaxMilliseconds: 60 * Q.minute,
                                    maxAgeMilliseconds: 5 * 1440 * Q.minute, jitter: { 1.0 })
        return DeliveryQueue(rules: DeliveryQueue.Rules(policy: policy, target: { $0.org == "a" ? a : b },
                                                        defaultConnections: 1, holdRecheckMilliseconds: Q.minute))
    }

    static func envelope(org: String) -> SpoolEnvelope {
        var envelope = Q.envelope()
        envelope.org = org
        return envelope
    }

    static let authRefused = UpstreamFailure(step: .auth, reply: SMTPReply(535, "5.7.8", "Authentication credentials invalid"),
                                             detail: "")

    @Test func twoKeysForOneUsernameNeverShareAConnection() {
        var queue = Self.queue(a: Self.target(password: "key-a"), b: Self.target(password: "key-b"))
        let first = Self.envelope(org: "a")
        queue.enqueue(first, content: [1])
        _ = queue.tick(now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        _ = queue.messageFinished(1, first.id, Q.delivered, tls: nil, now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)

        // A's connection is idle and the route's cap is one: B's message still opens its own.
        let second = Self.envelope(org: "b")
        queue.enqueue(second, content: [1])
        let actions = queue.tick(now: Self.start + 10)
        #expect(Q.sends(actions).isEmpty, "B's message went on A's connection")
        let opens = Q.opens(actions)
        #expect(opens.map(\.1.parameters.credentials?.password) == ["key-b"])
        #expect(queue.routes.count == 2)
        #expect(queue.connections[1]?.route != queue.connections[2]?.route)
        #expect(Q.sends(queue.connectionReady(2, now: Self.start + 20)).map(\.1) == [second.id])
    }

    @Test func oneAccountAndKeySharedByTwoOrgsSharesItsConnections() {
        let shared = Self.target(password: "same-key", source: "env SENDGRID_KEY")
        var queue = Self.queue(a: shared, b: shared)
        let first = Self.envelope(org: "a")
        queue.enqueue(first, content: [1])
        _ = queue.tick(now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        _ = queue.messageFinished(1, first.id, Q.delivered, tls: nil, now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)

        let second = Self.envelope(org: "b")
        queue.enqueue(second, content: [1])
        let actions = queue.tick(now: Self.start + 10)
        #expect(Q.opens(actions).isEmpty)
        #expect(Q.sends(actions).map(\.0) == [1], "the idle connection takes the other org's message")
        #expect(queue.routes.count == 1)
    }

    @Test func aRefusedKeyTakesDownOnlyItsOwnRoute() {
        var queue = Self.queue(a: Self.target(password: "key-a"), b: Self.target(password: "revoked"))
        let fromB = Self.envelope(org: "b")
        queue.enqueue(fromB)
        _ = queue.tick(now: Self.start)
        let closed = queue.connectionClosed(1, failure: Self.authRefused, now: Self.start + 100)
        // Named as status names it, so its smarthost_route_up series is not A's (issue 20 item 6).
        #expect(Q.notes(closed) == [.routeDown(route: "smtp.sendgrid.example:587 (org b)", error: Self.authRefused.summary,
                                               retryInMilliseconds: Q.minute, first: true)])
        #expect(Q.records(closed).map(\.envelope.id) == [fromB.id])

        // A's mail to the same hosts, same username, goes out meanwhile.
        let fromA = Self.envelope(org: "a")
        queue.enqueue(fromA, content: [1])
        let opens = Q.opens(queue.tick(now: Self.start + 200))
        #expect(opens.map(\.1.parameters.credentials?.password) == ["key-a"])
        #expect(Q.sends(queue.connectionReady(opens[0].0, now: Self.start + 300)).map(\.1) == [fromA.id])
        #expect(queue.routesDown(now: Self.start + 300) == 1)
        // status tells the down route from A's by the org whose mail it holds.
        let down = queue.routesDownNow(now: Self.start + 300)
        #expect(down.map(\.upstream) == ["smtp.sendgrid.example:587"])
        #expect(down.map(\.orgs) == [["b"]])
        #expect(down.first?.label == "smtp.sendgrid.example:587 (org b)")
    }

    @Test func aRouteWithoutAuthIsNamedAsBefore() {
        var queue = Self.queue(a: Self.target(password: nil), b: Self.target(password: nil))
        queue.enqueue(Self.envelope(org: "b"))
        _ = queue.tick(now: Self.start)
        _ = queue.connectionClosed(1, failure: Q.connectRefused, now: Self.start + 100)
        #expect(queue.routesDownNow(now: Self.start + 100).map(\.label) == ["smtp.sendgrid.example:587"])
    }

    @Test func theKeyTellsSecretsApartAndShowsNone() {
        let a = Self.target(password: "key-a").key
        #expect(a == Self.target(password: "key-a").key)
        #expect(a != Self.target(password: "key-b").key, "same username, another password")
        #expect(a != Self.target(password: "key-a", source: "file /etc/smarthost/a.key").key)
        #expect(a != Self.target(password: "key-a", username: "other").key)
        #expect(a != Self.target(password: nil).key)

        let hex = SHA256Digest.digest("key-a".utf8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        var dumped = ""
        dump(a, to: &dumped)
        for text in [a.description, String(reflecting: a), "\(a.credential)", dumped] {
            #expect(!text.contains("key-a"), "\(text)")
            #expect(!text.contains(String(hex.prefix(8))), "the digest leaked: \(text)")
        }
        #expect(a.description.contains("apikey") && a.description.contains("inline"))
    }

    @Test func anOAuth2RouteIsKeyedByItsTokenCacheAndMailbox() {
        let settings = OAuth2Settings(provider: .microsoft,
                                      grant: .clientSecret(clientID: "client", secret: Secret(revealed: "s", origin: "env S")),
                                      tokenURL: "https://login.example/tenant/token", scope: nil)
        var first = Self.target(password: "", username: "alerts@a.example")
        first.upstream.oauth2 = settings
        var second = first
        second.upstream.parameters.credentials?.username = "alerts@b.example"
        #expect(first.key != second.key)
        guard case .oauth2(let user, let cacheKey, let mechanism) = first.key.credential else {
            Issue.record("not an oauth2 identity: \(first.key.credential)")
            return
        }
        #expect(user == "alerts@a.example" && cacheKey == settings.cacheKey && mechanism == "xoauth2")
    }
}
