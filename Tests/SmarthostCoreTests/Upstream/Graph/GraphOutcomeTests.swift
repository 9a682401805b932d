import Testing
@testable import SmarthostCore

/// Graph's answers → the seam's facts → the one delivery policy's decision, as values.
@Suite struct GraphOutcomeTests {
    static func body(_ code: String, _ message: String) -> [UInt8] {
        Array(#"{"error": {"code": "\#(code)", "message": "\#(message)", "innerError": {"date": "x"}}}"#.utf8)
    }

    let policy = DeliveryPolicy(retryMinMilliseconds: 60_000, retryMaxMilliseconds: 3_600_000,
                                maxAgeMilliseconds: 5 * 86_400_000, jitter: { 1.0 })
    let now: Int64 = 1_000_000_000_000

    func decide(_ outcome: GraphOutcome, age: Int64 = 0) -> DeliveryDecision {
        policy.decide(DeliveryAttemptOutcome(outcome.sendResult(recipients: ["a@x"])), pendingRecipients: ["a@x"],
                      attempts: 1, receivedAtMilliseconds: now - age, nowMilliseconds: now)
    }

    @Test func statusesAreClassified() {
        #expect(GraphOutcome.classify(status: 202, retryAfter: nil, body: []) == .accepted)
        #expect(GraphOutcome.classify(status: 429, retryAfter: "7", body: Self.body("ApplicationThrottled", "slow"))
                == .throttled(GraphError(status: 429, code: "ApplicationThrottled", message: "slow"), retryAfterSeconds: 7))
        #expect(GraphOutcome.classify(status: 503, retryAfter: nil, body: []) == .throttled(GraphError(status: 503), retryAfterSeconds: nil))
        #expect(GraphOutcome.classify(status: 504, retryAfter: "2", body: []) == .throttled(GraphError(status: 504), retryAfterSeconds: 2))
        #expect(GraphOutcome.classify(status: 401, retryAfter: nil, body: []) == .tokenRefused(GraphError(status: 401)))
        #expect(GraphOutcome.classify(status: 403, retryAfter: nil, body: Self.body("ErrorAccessDenied", "no"))
                == .routeRefused(GraphError(status: 403, code: "ErrorAccessDenied", message: "no")))
        #expect(GraphOutcome.classify(status: 404, retryAfter: nil, body: []) == .routeRefused(GraphError(status: 404)))
        #expect(GraphOutcome.classify(status: 400, retryAfter: nil, body: Self.body("ErrorInvalidRecipients", "bad"))
                == .messageRejected(GraphError(status: 400, code: "ErrorInvalidRecipients", message: "bad")))
        #expect(GraphOutcome.classify(status: 413, retryAfter: nil, body: []) == .messageRejected(GraphError(status: 413)))
        // A 400 not known to be the message's is retried, never a dead letter on a guess.
        #expect(GraphOutcome.classify(status: 400, retryAfter: nil, body: Self.body("BadRequest", "?"))
                == .failed(GraphError(status: 400, code: "BadRequest", message: "?")))
        #expect(GraphOutcome.classify(status: 500, retryAfter: nil, body: Array("<html>".utf8)) == .failed(GraphError(status: 500)))
    }

    @Test func retryAfterIsSecondsBoundedAndADateIsNotSeconds() {
        #expect(GraphOutcome.parseRetryAfter("30") == 30)
        #expect(GraphOutcome.parseRetryAfter("0") == 0)
        #expect(GraphOutcome.parseRetryAfter("999999") == GraphOutcome.maxRetryAfterSeconds)
        #expect(GraphOutcome.parseRetryAfter("Wed, 21 Oct 2026 07:28:00 GMT") == nil)
        #expect(GraphOutcome.parseRetryAfter("-5") == nil)
        #expect(GraphOutcome.parseRetryAfter(nil) == nil)
    }

    @Test func acceptedDeliversEveryRecipient() {
        let decision = decide(.accepted)
        #expect(decision.disposition == .remove)
        #expect(decision.delivered == ["a@x"])
    }

    @Test func a429DefersByExactlyRetryAfterAndThrottles() {
        let decision = decide(.throttled(GraphError(status: 429, code: "ApplicationThrottled"), retryAfterSeconds: 7), age: 86_400_000)
        // The message's own schedule (its age, a day, capped at retry_max) would say an hour.
        #expect(decision.disposition == .retry(atMilliseconds: now + 7_000))
        #expect(decision.throttled)
        #expect(decision.retryAfterMilliseconds == 7_000)
        #expect(decision.reason.contains("Retry-After 7s"))
    }

    @Test func a503WithoutRetryAfterFollowsTheScheduleAndThrottles() {
        let decision = decide(.throttled(GraphError(status: 503), retryAfterSeconds: nil))
        #expect(decision.disposition == .retry(atMilliseconds: now + 60_000))
        #expect(decision.throttled)
    }

    @Test func invalidRecipientsIsADeadLetterWithGraphsWords() {
        let decision = decide(.messageRejected(GraphError(status: 400, code: "ErrorInvalidRecipients", message: "At least one recipient isn't valid.")))
        #expect(decision.disposition == .deadLetter)
        #expect(decision.reason == "Graph refused the message: HTTP 400 Bad Request ErrorInvalidRecipients: At least one recipient isn't valid.")
        #expect(decision.refused["a@x"]?.contains("ErrorInvalidRecipients") == true)
    }

    @Test func forbiddenAndNotFoundAreNeverADeadLetterBeforeMaxAge() {
        for error in [GraphError(status: 403, code: "ErrorAccessDenied"), GraphError(status: 404, code: "ErrorInvalidUser")] {
            guard case .notSent(let failure) = GraphOutcome.routeRefused(error).sendResult(recipients: ["a@x"]) else {
                Issue.record("a route refusal is not a transaction"); continue
            }
            #expect(failure.reason == .graphRouteRefused(status: error.status, code: error.code))
            guard case .retry = decide(.routeRefused(error)).disposition else { Issue.record("\(error) not retried"); continue }
            let expired = decide(.routeRefused(error), age: 5 * 86_400_000)
            #expect(expired.disposition == .deadLetter && expired.reason.hasPrefix("expired after 5d"))
        }
    }

    @Test func theRouteDownPolicyAppliesToRouteRefusals() {
        let failure = GraphOutcome.routeRefused(GraphError(status: 403)).failure!
        #expect(policy.siteOutcome(failure, hostDownForMilliseconds: 0, otherHostUp: false) == .routeDown(retryInMilliseconds: 60_000))
    }

    @Test func transportFailuresSayWhetherGraphMayHaveTheMessage() {
        let connect = GraphOutcome.transportFailure(CurlHTTPClient.TransportError(code: 7, description: "Failed to connect"), url: "https://g")
        #expect(!connect.mayHaveBeenDelivered && connect.reason == .graphTransportFailed(code: 7))
        let timeout = GraphOutcome.transportFailure(CurlHTTPClient.TransportError(code: 28, description: "Operation timed out"), url: "https://g")
        #expect(timeout.mayHaveBeenDelivered)
    }

    @Test func errorTextIsCleanedAndBounded() {
        let error = GraphError(status: 400, body: Self.body("ErrorInvalidRecipients", "line\\r\\nInjected: x" + String(repeating: "y", count: 500)))
        #expect(!(error.message ?? "").contains("\r") && !(error.message ?? "").contains("\n"))
        #expect((error.message ?? "").count == 300)
        #expect(GraphError(status: 418, body: []).description == "HTTP 418")
    }
}
