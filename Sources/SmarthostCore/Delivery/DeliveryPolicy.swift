/// What one delivery attempt turned out to be, from the driver: either the upstream
/// session's per-message result, or a failure before any message could be sent (DNS,
/// connect, TLS, AUTH, a dead greeting).
public enum DeliveryAttemptOutcome: Sendable {
    case result(UpstreamDeliveryResult)
    case setupFailed(UpstreamFailure)

    /// What the connection reported (`UpstreamConnectionEvent.finished`), as an attempt.
    public init(_ sent: UpstreamSendResult) {
        switch sent {
        case .transaction(let result): self = .result(result)
        case .notSent(let failure): self = .setupFailed(failure)
        }
    }
}

/// What happens to the message now. Decided in exactly one place — this file — from the
/// failure and the reply (Postfix `smtp_trouble.c`, dma's `dma.c`); protocol code only
/// reports facts.
public struct DeliveryDecision: Sendable, Equatable {
    public enum Disposition: Sendable, Equatable {
        /// Every recipient is settled and none failed for good: remove from the spool.
        case remove
        /// Try the remaining recipients again at this wall-clock time (ms).
        case retry(atMilliseconds: Int64)
        /// Keep as a dead letter under `failed/` with this reason.
        case deadLetter
        /// This transaction's recipients are settled; the rest of the envelope goes in the
        /// next one now (`max_recipients_per_message`). Not an attempt of its own.
        case nextBatch
    }

    public var disposition: Disposition
    /// Recipients the upstream took in this attempt.
    public var delivered: [String]
    /// Recipients refused for good in this attempt, with the upstream's words.
    public var refused: [String: String]
    /// The reason for a retry or dead letter, in plain words with the upstream reply.
    public var reason: String
    /// The upstream may already have the message (connection lost after the body): a retry
    /// may duplicate it, and the log says so.
    public var possibleDuplicate: Bool
    /// The upstream said we send too fast (`isThrottling`): the route slows down, and the
    /// message is deferred without the route counting as down.
    public var throttled = false
    /// The upstream said when to come back (HTTP `Retry-After`): a retry is due exactly then,
    /// and the route sends nothing before it.
    public var retryAfterMilliseconds: Int64?
}

/// What a failed connection means for its site (`DeliveryPolicy.siteOutcome`).
public enum SiteOutcome: Sendable, Equatable {
    /// Too fast, not down: the route slows down, and its waiting mail stays with it.
    case throttled(SMTPReply)
    /// The host is down for this long; another host of the route carries its mail.
    case nextHost(retryInMilliseconds: Int64)
    /// The host is down for this long and it was the last one up: the route is down.
    case routeDown(retryInMilliseconds: Int64)
}

public struct DeliveryPolicy: Sendable {
    public var retryMinMilliseconds: Int64
    public var retryMaxMilliseconds: Int64
    public var maxAgeMilliseconds: Int64
    /// Jitter source in 0..<1; injectable so tests are exact.
    public var jitter: @Sendable () -> Double

    public init(retryMinMilliseconds: Int64, retryMaxMilliseconds: Int64, maxAgeMilliseconds: Int64,
                jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.retryMinMilliseconds = retryMinMilliseconds
        self.retryMaxMilliseconds = retryMaxMilliseconds
        self.maxAgeMilliseconds = maxAgeMilliseconds
        self.jitter = jitter
    }

    /// - Parameters:
    ///   - attempts: attempts made so far, including this one.
    ///   - earlierRefusals: recipients refused for good by earlier attempts, with the reply:
    ///     once nothing is left to retry, they make the message a dead letter.
    ///   - receivedAtMilliseconds/nowMilliseconds: wall clock, for the age limit.
    ///   - laterRecipients: recipients of the envelope not in this transaction (over the
    ///     route's `max_recipients_per_message`): when this one settles its recipients,
    ///     they go next (`.nextBatch`); when it is retried, so are they.
    public func decide(_ outcome: DeliveryAttemptOutcome, pendingRecipients: [String], attempts: Int,
                       earlierRefusals: [String: String] = [:], laterRecipients: [String] = [],
                       receivedAtMilliseconds: Int64, nowMilliseconds: Int64) -> DeliveryDecision {
        var decision = classify(outcome, pendingRecipients: pendingRecipients)
        decision.throttled = Self.isThrottling(outcome)
        decision.retryAfterMilliseconds = Self.failure(of: outcome)?.retryAfterMilliseconds
        if !laterRecipients.isEmpty, decision.disposition == .remove || decision.disposition == .deadLetter {
            // Refusals are kept with the envelope; the last transaction turns them into the
            // dead letter (below), as for refusals of an earlier attempt.
            decision.disposition = .nextBatch
            return decision
        }
        if decision.disposition == .remove && !earlierRefusals.isEmpty {
            // The rest is settled now; the recipients refused earlier still need a dead letter.
            decision.disposition = .deadLetter
            decision.reason = Self.refusalReason(earlierRefusals)
        } else if decision.disposition == .deadLetter && !earlierRefusals.isEmpty {
            decision.reason += "; earlier " + Self.refusalReason(earlierRefusals)
        }
        if case .retry = decision.disposition {
            if nowMilliseconds - receivedAtMilliseconds >= maxAgeMilliseconds {
                decision.disposition = .deadLetter
                decision.reason = "expired after \(Self.humanDuration(nowMilliseconds - receivedAtMilliseconds)) in the queue; last error: \(decision.reason)"
            } else {
                let age = nowMilliseconds - receivedAtMilliseconds
                let delay = decision.retryAfterMilliseconds ?? retryDelay(ageMilliseconds: age)
                decision.disposition = .retry(atMilliseconds: nowMilliseconds + delay)
            }
        }
        return decision
    }

    /// The wait after a failed attempt is the message's age, within [retry_min, retry_max]
    /// (Postfix's qmgr does the same): as the age doubles with every wait, so does the wait,
    /// and an extra attempt an operator asked for (`queue flush`) pushes nothing further
    /// out, unlike a count of attempts. Equal jitter as below.
    public func retryDelay(ageMilliseconds age: Int64) -> Int64 {
        let base = min(max(age, retryMinMilliseconds), retryMaxMilliseconds)
        let low = max(retryMinMilliseconds, base / 2)
        return low + Int64((Double(base - low) * jitter()).rounded())
    }

    /// How long a host (or a whole route) that failed stays marked down: like a message's
    /// wait, the time it has been down so far, within [retry_min, retry_max], so a host
    /// down for a minute is probed again soon and one down for a day is not probed every
    /// minute.
    public func downDelay(downForMilliseconds: Int64) -> Int64 {
        retryDelay(ageMilliseconds: downForMilliseconds)
    }

    /// What a connection's failure means for its host and route, beside what an outcome
    /// means for a message (`decide`): a throttling reply slows the route and downs
    /// nothing; any other failure downs the host for `downDelay` of how long it has been
    /// down, and the next host of the route takes its mail — or, when no other host is up,
    /// the route is down and the mail waiting for it had its attempt.
    /// - Parameters:
    ///   - hostDownForMilliseconds: how long the host has been down already (0: it was up).
    ///   - otherHostUp: another host of the route is up now.
    public func siteOutcome(_ failure: UpstreamFailure, hostDownForMilliseconds: Int64, otherHostUp: Bool) -> SiteOutcome {
        if let reply = failure.reply, Self.isThrottling(reply) { return .throttled(reply) }
        let retryIn = downDelay(downForMilliseconds: hostDownForMilliseconds)
        return otherHostUp ? .nextHost(retryInMilliseconds: retryIn) : .routeDown(retryInMilliseconds: retryIn)
    }

    /// A reply that means "you are sending too fast" rather than "this message" or "this
    /// server is broken": Microsoft 365's `421 4.4.2 Message submission rate … exceeded` and
    /// `432 4.3.2 … concurrent connections`, Amazon SES's `454 Throttling failure: Maximum
    /// sending rate exceeded`, Gmail's `421 4.7.28 … unusual rate`, and any other 4xx that
    /// says rate or throttl…. Never a 5xx: that is a refusal, whatever its words.
    public static func isThrottling(_ reply: SMTPReply) -> Bool {
        guard reply.isTransient else { return false }
        if reply.code == 432 { return true }
        let words = reply.text.lowercased().split { !$0.isLetter }
        return words.contains { $0 == "rate" || $0 == "ratelimit" || $0 == "ratelimited" || $0.hasPrefix("throttl") }
    }

    /// A throttling reply, or Graph's 429/503/504 (`graphThrottled`, which has no reply).
    static func isThrottling(_ failure: UpstreamFailure) -> Bool {
        if case .graphThrottled? = failure.reason { return true }
        return failure.reply.map(isThrottling) ?? false
    }

    static func isThrottling(_ outcome: DeliveryAttemptOutcome) -> Bool {
        switch outcome {
        case .setupFailed(let failure):
            return isThrottling(failure)
        case .result(let result):
            if let failure = result.failure, isThrottling(failure) { return true }
            return result.refused.contains { isThrottling($0.reply) }
        }
    }

    private static func failure(of outcome: DeliveryAttemptOutcome) -> UpstreamFailure? {
        switch outcome {
        case .setupFailed(let failure): return failure
        case .result(let result): return result.failure
        }
    }

    private func classify(_ outcome: DeliveryAttemptOutcome, pendingRecipients: [String]) -> DeliveryDecision {
        switch outcome {
        case .setupFailed(let failure):
            // DNS, connect, TLS, certificate, AUTH, greeting: the route (or our config) is at
            // fault, not the message. Retry; an operator can fix it before max_age.
            return DeliveryDecision(disposition: .retry(atMilliseconds: 0), delivered: [], refused: [:],
                                    reason: failure.summary, possibleDuplicate: false)
        case .result(let result):
            return classify(result, pendingRecipients: pendingRecipients)
        }
    }

    private func classify(_ result: UpstreamDeliveryResult, pendingRecipients: [String]) -> DeliveryDecision {
        var refused: [String: String] = [:]
        var retryLater = false
        for item in result.refused {
            if item.reply.isPermanent {
                refused[item.recipient] = item.reply.description
            } else {
                retryLater = true
            }
        }
        // "No recipient accepted" is not a failure of the transaction as a whole: each
        // recipient has its own reply, and a 4xx one must be retried even when another got
        // 5xx (the session reports the last RCPT reply as the failure).
        if let failure = result.failure, !(failure.step == .rcptTo && result.accepted.isEmpty && !result.refused.isEmpty) {
            return transactionFailed(failure, pendingRecipients: pendingRecipients, refused: refused)
        }
        let delivered = result.failure == nil ? result.accepted.map(\.recipient) : []
        let answered = Set(delivered + result.refused.map(\.recipient))
        let unanswered = pendingRecipients.filter { !answered.contains($0) }
        if retryLater || !unanswered.isEmpty {
            var reasons = result.refused.filter { $0.reply.isTransient }.map { "\($0.recipient): \($0.reply.description)" }
            if reasons.isEmpty, let failure = result.failure { reasons.append(failure.summary) }
            if !refused.isEmpty { reasons.append(Self.refusalReason(refused)) }
            return DeliveryDecision(disposition: .retry(atMilliseconds: 0), delivered: delivered, refused: refused,
                                    reason: reasons.joined(separator: "; "), possibleDuplicate: false)
        }
        if !refused.isEmpty {
            return DeliveryDecision(disposition: .deadLetter, delivered: delivered, refused: refused,
                                    reason: Self.refusalReason(refused), possibleDuplicate: false)
        }
        return DeliveryDecision(disposition: .remove, delivered: delivered, refused: [:], reason: "", possibleDuplicate: false)
    }

    /// The transaction as a whole failed: a permanent reply fails every recipient still
    /// pending; anything else (4xx, timeout, lost connection) is retried.
    private func transactionFailed(_ failure: UpstreamFailure, pendingRecipients: [String], refused: [String: String]) -> DeliveryDecision {
        // `isPermanent` also covers refusals made before sending (over the upstream's SIZE,
        // SMTPUTF8 not offered): retrying cannot help those either.
        if failure.isPermanent {
            var all = refused
            for recipient in pendingRecipients where all[recipient] == nil {
                all[recipient] = failure.reply?.description ?? failure.detail
            }
            return DeliveryDecision(disposition: .deadLetter, delivered: [], refused: all,
                                    reason: failure.summary, possibleDuplicate: false)
        }
        return DeliveryDecision(disposition: .retry(atMilliseconds: 0), delivered: [], refused: refused,
                                reason: failure.summary, possibleDuplicate: failure.mayHaveBeenDelivered)
    }

    /// Every refused recipient with the upstream's reply, in a stable order.
    static func refusalReason(_ refused: [String: String]) -> String {
        "recipient refused: " + refused.keys.sorted().map { "\($0): \(refused[$0]!)" }.joined(separator: "; ")
    }

    static func humanDuration(_ milliseconds: Int64) -> String {
        let seconds = milliseconds / 1000
        if seconds >= 86_400 { return "\(seconds / 86_400)d\((seconds % 86_400) / 3600)h" }
        if seconds >= 3600 { return "\(seconds / 3600)h\((seconds % 3600) / 60)m" }
        if seconds >= 60 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(seconds)s"
    }
}
