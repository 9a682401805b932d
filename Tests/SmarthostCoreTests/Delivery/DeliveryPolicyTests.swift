import Testing
@testable import SmarthostCore

@Suite struct DeliveryPolicyTests {
    static let minute: Int64 = 60_000
    let policy = DeliveryPolicy(retryMinMilliseconds: minute, retryMaxMilliseconds: 60 * minute,
                                maxAgeMilliseconds: 5 * 1440 * minute, jitter: { 1.0 })
    let now: Int64 = 1_000_000_000_000

    func decide(_ outcome: DeliveryAttemptOutcome, pending: [String] = ["a@x", "b@x"], attempts: Int = 1, age: Int64 = 0) -> DeliveryDecision {
        policy.decide(outcome, pendingRecipients: pending, attempts: attempts, receivedAtMilliseconds: now - age, nowMilliseconds: now)
    }

    static func ok(_ r: String) -> UpstreamRecipientResult { UpstreamRecipientResult(recipient: r, reply: SMTPReply(250, "2.1.5", "ok")) }
    static func refused(_ r: String, _ code: Int) -> UpstreamRecipientResult {
        UpstreamRecipientResult(recipient: r, reply: SMTPReply(code, code >= 500 ? "5.1.1" : "4.2.0", "no"))
    }

    /// The upstream session reports "no recipient accepted" with the last RCPT reply; each
    /// recipient must still be judged by its own reply.
    @Test func noRecipientAcceptedJudgesEachRecipientByItsOwnReply() {
        let lastReply = SMTPReply(550, "5.1.1", "no")
        let failure = UpstreamFailure(step: .rcptTo, reply: lastReply, detail: "no recipient accepted")
        let mixed = decide(.result(UpstreamDeliveryResult(refused: [Self.refused("a@x", 450), Self.refused("b@x", 550)], failure: failure)))
        guard case .retry = mixed.disposition else { Issue.record("a 4xx recipient must be retried, got \(mixed.disposition)"); return }
        #expect(mixed.refused.keys.sorted() == ["b@x"])
        #expect(mixed.reason.contains("a@x") && mixed.reason.contains("b@x"))

        let both = decide(.result(UpstreamDeliveryResult(refused: [Self.refused("a@x", 550), Self.refused("b@x", 551)], failure: failure)))
        #expect(both.disposition == .deadLetter)
        #expect(both.refused.keys.sorted() == ["a@x", "b@x"])
        #expect(both.reason.contains("a@x: 550") && both.reason.contains("b@x: 551"), "\(both.reason)")
    }

    /// A recipient refused in an earlier attempt (while another was deferred) is not
    /// forgotten when the other one is finally delivered.
    @Test func earlierRefusalsMakeADeadLetterOnceTheRestIsDelivered() {
        let result = UpstreamDeliveryResult(accepted: [Self.ok("a@x")], dataReply: SMTPReply(250, "2.0.0", "queued"))
        let decision = policy.decide(.result(result), pendingRecipients: ["a@x"], attempts: 3,
                                     earlierRefusals: ["b@x": "550 5.1.1 no such user"],
                                     receivedAtMilliseconds: now, nowMilliseconds: now)
        #expect(decision.disposition == .deadLetter)
        #expect(decision.delivered == ["a@x"])
        #expect(decision.reason == "recipient refused: b@x: 550 5.1.1 no such user")
    }

    @Test func allAcceptedIsRemoved() {
        let result = UpstreamDeliveryResult(accepted: [Self.ok("a@x"), Self.ok("b@x")], dataReply: SMTPReply(250, "2.0.0", "queued"))
        let decision = decide(.result(result))
        #expect(decision.disposition == .remove)
        #expect(decision.delivered == ["a@x", "b@x"])
    }

    /// The wait is the message's age within [retry_min, retry_max]: it doubles as the age
    /// does, and the number of attempts (an operator's `queue flush` adds some) plays no part.
    @Test func setupFailuresAreRetriedAfterTheMessagesAgeWithinTheBounds() {
        let failure = UpstreamFailure(step: .auth, reply: SMTPReply(535, "5.7.8", "bad credentials"), detail: "AUTH")
        #expect(decide(.setupFailed(failure), attempts: 1).disposition == .retry(atMilliseconds: now + Self.minute))
        #expect(decide(.setupFailed(failure), attempts: 3, age: 4 * Self.minute).disposition == .retry(atMilliseconds: now + 4 * Self.minute))
        #expect(decide(.setupFailed(failure), attempts: 30, age: 4 * Self.minute).disposition == .retry(atMilliseconds: now + 4 * Self.minute))
        #expect(decide(.setupFailed(failure), attempts: 2, age: 600 * Self.minute).disposition == .retry(atMilliseconds: now + 60 * Self.minute))
        #expect(decide(.setupFailed(failure)).reason.contains("535 5.7.8"))
    }

    @Test func jitterStaysWithinHalfToFullDelay() {
        let low = DeliveryPolicy(retryMinMilliseconds: Self.minute, retryMaxMilliseconds: 60 * Self.minute, maxAgeMilliseconds: 1, jitter: { 0.0 })
        // Age 8 min: with no jitter the wait is half of it, with full jitter all of it.
        #expect(low.retryDelay(ageMilliseconds: 8 * Self.minute) == 4 * Self.minute)
        #expect(policy.retryDelay(ageMilliseconds: 8 * Self.minute) == 8 * Self.minute)
        // Never below retry_min, never above retry_max.
        #expect(low.retryDelay(ageMilliseconds: 0) == Self.minute)
        #expect(policy.retryDelay(ageMilliseconds: 1000 * Self.minute) == 60 * Self.minute)
    }

    @Test func permanentTransactionFailureDeadLettersEveryPendingRecipient() {
        let failure = UpstreamFailure(step: .dataEnd, reply: SMTPReply(554, "5.7.1", "policy"), detail: "")
        let decision = decide(.result(UpstreamDeliveryResult(accepted: [Self.ok("a@x"), Self.ok("b@x")], failure: failure)))
        #expect(decision.disposition == .deadLetter)
        #expect(decision.refused.keys.sorted() == ["a@x", "b@x"])
    }

    @Test func transientTransactionFailureRetriesAndFlagsPossibleDuplicates() {
        let failure = UpstreamFailure(step: .dataEnd, detail: "connection lost", mayHaveBeenDelivered: true)
        let decision = decide(.result(UpstreamDeliveryResult(accepted: [Self.ok("a@x")], failure: failure)))
        guard case .retry = decision.disposition else { Issue.record("expected retry"); return }
        #expect(decision.possibleDuplicate)
        #expect(decision.delivered.isEmpty, "nothing counts as delivered without the final reply")
    }

    @Test func mixedRecipientsKeepDeliveredOnesAndRetryTransientOnes() {
        let result = UpstreamDeliveryResult(accepted: [Self.ok("a@x")], refused: [Self.refused("b@x", 450)], dataReply: SMTPReply(250, "2.0.0", "ok"))
        let decision = decide(.result(result))
        guard case .retry = decision.disposition else { Issue.record("expected retry"); return }
        #expect(decision.delivered == ["a@x"])
        #expect(decision.refused.isEmpty)
    }

    @Test func permanentlyRefusedRecipientBecomesADeadLetterWhileOthersAreDelivered() {
        let result = UpstreamDeliveryResult(accepted: [Self.ok("a@x")], refused: [Self.refused("b@x", 550)], dataReply: SMTPReply(250, "2.0.0", "ok"))
        let decision = decide(.result(result))
        #expect(decision.disposition == .deadLetter)
        #expect(decision.delivered == ["a@x"])
        #expect(decision.refused["b@x"]?.contains("550") == true)
    }

    @Test func olderThanMaxAgeIsADeadLetterInsteadOfARetry() {
        let failure = UpstreamFailure(step: .connect, detail: "connect to 192.0.2.1:25 timed out")
        let decision = decide(.setupFailed(failure), age: 5 * 1440 * Self.minute)
        #expect(decision.disposition == .deadLetter)
        #expect(decision.reason.hasPrefix("expired after 5d"))
        #expect(decision.reason.contains("timed out"))
    }

    // MARK: throttling and batches (issue 15)

    @Test(arguments: [
        (SMTPReply(421, "4.4.2", "Message submission rate for this client has exceeded the configured limit"), true),
        (SMTPReply(432, "4.3.2", "STOREDRV.ClientSubmit; sender thread limit exceeded"), true),
        (SMTPReply(454, nil, "Throttling failure: Maximum sending rate exceeded."), true),
        (SMTPReply(421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail"), true),
        (SMTPReply(451, "4.7.1", "Rate limited, try again later"), true),
        (SMTPReply(450, "4.2.1", "Mailbox busy, try again later"), false),
        (SMTPReply(421, "4.3.2", "Service shutting down"), false),
        (SMTPReply(451, "4.3.0", "Temporary failure generating reply"), false),
        (SMTPReply(550, "5.7.1", "Sending rate exceeded: message refused"), false),
    ])
    func throttlingRepliesAreTold(reply: SMTPReply, throttling: Bool) {
        #expect(DeliveryPolicy.isThrottling(reply) == throttling, "\(reply.description)")
    }

    @Test func aThrottlingReplyIsAnOrdinaryRetryMarkedThrottled() {
        let failure = UpstreamFailure(step: .mailFrom, reply: SMTPReply(454, nil, "Throttling failure: Maximum sending rate exceeded."), detail: "")
        let decision = decide(.result(UpstreamDeliveryResult(failure: failure)))
        #expect(decision.throttled)
        #expect(decision.disposition == .retry(atMilliseconds: now + Self.minute))
    }

    @Test func aSettledBatchWithMoreRecipientsToGoIsTheNextBatch() {
        let result = UpstreamDeliveryResult(accepted: [Self.ok("a@x")], refused: [Self.refused("b@x", 550)], dataReply: SMTPReply(250, "2.0.0", "ok"))
        let decision = policy.decide(.result(result), pendingRecipients: ["a@x", "b@x"], attempts: 1, laterRecipients: ["c@x"],
                                     receivedAtMilliseconds: now, nowMilliseconds: now)
        #expect(decision.disposition == .nextBatch)
        #expect(decision.delivered == ["a@x"] && decision.refused.keys.sorted() == ["b@x"])
        let last = policy.decide(.result(UpstreamDeliveryResult(accepted: [Self.ok("c@x")], dataReply: SMTPReply(250, "2.0.0", "ok"))),
                                 pendingRecipients: ["c@x"], attempts: 1, earlierRefusals: decision.refused,
                                 receivedAtMilliseconds: now, nowMilliseconds: now)
        #expect(last.disposition == .deadLetter, "b@x was refused in the first batch")
    }
}
