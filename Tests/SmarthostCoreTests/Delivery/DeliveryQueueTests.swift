import Testing
@testable import SmarthostCore

/// The delivery queue as a value: events in, actions out, the clock in the test's hands.
@Suite struct DeliveryQueueTests {
    static let minute: Int64 = 60_000
    static let start: Int64 = 1_800_000_000_000
    static let ids = SpoolIDGenerator()

    static func target(hosts: [String] = ["a.example"], limits: RouteLimits = RouteLimits(),
                       missing: String? = nil) -> DeliveryTarget {
        var target = DeliveryTarget(host: hosts[0], port: 587, caFile: nil, timeoutMilliseconds: 30_000,
                                    parameters: UpstreamParameters(ehloName: "relay.example", tlsMode: .none), hosts: hosts)
        target.limits = limits
        target.missingCredential = missing
        return target
    }

    static func queue(_ target: DeliveryTarget, connections: Int = 2, maxAge: Int64 = 5 * 1440 * minute) -> DeliveryQueue {
        let policy = DeliveryPolicy(retryMinMilliseconds: minute, retryMaxMilliseconds: 60 * minute,
                                    maxAgeMilliseconds: maxAge, jitter: { 1.0 })
        return DeliveryQueue(rules: DeliveryQueue.Rules(policy: policy, target: { _ in target },
                                                        defaultConnections: connections, holdRecheckMilliseconds: minute))
    }

    static func envelope(_ recipients: [String] = ["r@x.example"], receivedAt: Int64 = start) -> SpoolEnvelope {
        SpoolEnvelope(id: ids.next(), receivedAt: receivedAt / 1000, sender: "app@host.example", recipients: recipients,
                      heloName: "localhost", clientAddress: "127.0.0.1", size: 10)
    }

    /// A queue whose connection 1 has just been handed `message`.
    static func withConnectionReady(_ message: SpoolEnvelope, inMemory: Bool) -> DeliveryQueue {
        var queue = queue(target())
        queue.enqueue(message, content: inMemory ? [1] : nil)
        _ = queue.tick(now: start)
        _ = queue.connectionReady(1, now: start)
        return queue
    }

    /// A queue whose connection 1 delivered a message and is idle since `start`.
    static func idleAfterOneDelivery() -> DeliveryQueue {
        let message = envelope()
        var queue = withConnectionReady(message, inMemory: true)
        _ = queue.messageFinished(1, message.id, delivered, tls: nil, now: start)
        _ = queue.connectionReady(1, now: start)
        return queue
    }

    static let delivered = DeliveryAttemptOutcome.result(UpstreamDeliveryResult(
        accepted: [UpstreamRecipientResult(recipient: "r@x.example", reply: SMTPReply(250, "2.1.5", "ok"))],
        dataReply: SMTPReply(250, "2.0.0", "queued")))

    static func accepted(_ recipients: [String]) -> DeliveryAttemptOutcome {
        .result(UpstreamDeliveryResult(accepted: recipients.map { UpstreamRecipientResult(recipient: $0, reply: SMTPReply(250, "2.1.5", "ok")) },
                                       dataReply: SMTPReply(250, "2.0.0", "queued")))
    }

    static let connectRefused = UpstreamFailure(step: .connect, detail: "connect to a.example:587: Connection refused")

    // MARK: reading actions

    static func opens(_ actions: [DeliveryAction]) -> [(DeliveryQueue.ConnectionID, UpstreamTarget)] {
        actions.compactMap { if case .open(let cid, let target) = $0 { return (cid, target) }; return nil }
    }

    static func sends(_ actions: [DeliveryAction]) -> [(DeliveryQueue.ConnectionID, SpoolID, [String])] {
        actions.compactMap { if case .send(let cid, let id, let message) = $0 { return (cid, id, message.recipients) }; return nil }
    }

    static func reads(_ actions: [DeliveryAction]) -> [(DeliveryQueue.ConnectionID, SpoolID, [String])] {
        actions.compactMap { if case .read(let cid, let envelope, let recipients) = $0 { return (cid, envelope.id, recipients) }; return nil }
    }

    static func transmits(_ actions: [DeliveryAction]) -> [(DeliveryQueue.ConnectionID, SpoolID)] {
        actions.compactMap { if case .send(let cid, let id, _) = $0 { return (cid, id) }; return nil }
    }

    static func quits(_ actions: [DeliveryAction]) -> [DeliveryQueue.ConnectionID] {
        actions.compactMap { if case .quit(let cid) = $0 { return cid }; return nil }
    }

    static func records(_ actions: [DeliveryAction]) -> [DeliveryRecord] {
        actions.compactMap { if case .record(let record) = $0 { return record }; return nil }
    }

    static func notes(_ actions: [DeliveryAction]) -> [DeliveryNote] {
        actions.compactMap { if case .note(let note) = $0 { return note }; return nil }
    }

    // MARK: the common path

    @Test func aMessageInMemoryIsSentOnTheConnectionItOpensAndRemovedWhenDelivered() {
        var queue = Self.queue(Self.target())
        let message = Self.envelope()
        queue.enqueue(message, content: Array("body".utf8))
        #expect(queue.nextWake(now: Self.start) == 0)
        let opened = queue.tick(now: Self.start)
        #expect(Self.opens(opened).map(\.0) == [1])
        #expect(queue.state(of: message.id) == .inFlight)
        let sent = queue.connectionReady(1, now: Self.start + 10)
        #expect(Self.sends(sent).map(\.1) == [message.id])
        let done = queue.messageFinished(1, message.id, Self.delivered, tls: nil, now: Self.start + 20)
        #expect(Self.records(done).map(\.kind) == [.delivered])
        #expect(queue.queuedCount == 0 && queue.counters.delivered == 1 && queue.contentInMemoryBytes == 0)
    }

    @Test func aMessageNotInMemoryIsReadForItsConnectionThenTransmitted() {
        var queue = Self.queue(Self.target())
        let message = Self.envelope()
        queue.enqueue(message)
        _ = queue.tick(now: Self.start)
        let reading = queue.connectionReady(1, now: Self.start)
        #expect(Self.reads(reading).map(\.1) == [message.id])
        let go = queue.messageRead(1, message.id, .ready(message), now: Self.start + 5)
        #expect(Self.transmits(go).map(\.1) == [message.id])
    }

    /// The old scheduler needed `pools[key] ?? pool` for this: the connection goes away while
    /// the worker reads its message. The message is due again at once, and the late read
    /// result is ignored rather than sent on a connection that no longer exists.
    @Test func aConnectionClosedWhileItsMessageIsReadRequeuesItAndTheLateReadIsIgnored() {
        let message = Self.envelope()
        var queue = Self.withConnectionReady(message, inMemory: false)
        _ = queue.connectionClosed(1, failure: nil, now: Self.start + 1)
        #expect(queue.state(of: message.id) == .waiting)
        #expect(queue.messageRead(1, message.id, .ready(message), now: Self.start + 2).isEmpty)
        let again = queue.tick(now: Self.start + 2)
        #expect(Self.opens(again).map(\.0) == [2])
        #expect(Self.records(again).isEmpty, "no attempt was made: nothing to record")
    }

    /// Issue 14 defect 1: an idle connection whose idle time ends in the same tick as a
    /// message becomes due takes the message; it is not quit under it.
    @Test func anIdleConnectionDueToQuitTakesAMessageDueAtTheSameTime() {
        var queue = Self.idleAfterOneDelivery()
        let idleEnds = Self.start + DeliveryQueue.idleQuitMilliseconds
        #expect(queue.nextWake(now: Self.start) == idleEnds)
        var second = Self.envelope()
        second.nextAttemptAt = idleEnds / 1000
        queue.enqueue(second, content: [2])
        let actions = queue.tick(now: idleEnds)
        #expect(Self.sends(actions).map(\.0) == [1])
        #expect(Self.quits(actions).isEmpty && Self.opens(actions).isEmpty)
    }

    @Test func anIdleConnectionIsQuitAfterItsIdleTime() {
        var queue = Self.idleAfterOneDelivery()
        #expect(Self.quits(queue.tick(now: Self.start + DeliveryQueue.idleQuitMilliseconds - 1)).isEmpty)
        #expect(Self.quits(queue.tick(now: Self.start + DeliveryQueue.idleQuitMilliseconds)) == [1])
    }

    @Test func connectionsOpenOnlyForMessagesNotAlreadyCoveredAndUpToTheCap() {
        var queue = Self.queue(Self.target(), connections: 3)
        queue.enqueue(Self.envelope())
        #expect(Self.opens(queue.tick(now: Self.start)).count == 1)
        queue.enqueue(Self.envelope())
        #expect(Self.opens(queue.tick(now: Self.start)).count == 1, "one more message, one more connection")
        for _ in 0..<5 { queue.enqueue(Self.envelope()) }
        #expect(Self.opens(queue.tick(now: Self.start)).count == 1, "the cap is 3")
    }

    // MARK: a route that fails

    @Test func aRouteDownDefersItsWaitingMessagesAndHoldsNewOnesUntilItsRetry() {
        var queue = Self.queue(Self.target(), connections: 1)
        let messages = (0..<3).map { _ in Self.envelope() }
        for message in messages { queue.enqueue(message) }
        _ = queue.tick(now: Self.start)
        let closed = queue.connectionClosed(1, failure: Self.connectRefused, now: Self.start + 100)
        #expect(Self.notes(closed) == [.routeDown(route: "a.example:587", error: Self.connectRefused.summary,
                                                  retryInMilliseconds: Self.minute, first: true)])
        #expect(Self.records(closed).count == 3)
        #expect(Self.records(closed).allSatisfy { if case .deferred = $0.kind { return $0.envelope.attempts == 1 }; return false })
        #expect(queue.routesDown(now: Self.start + 100) == 1)
        #expect(queue.routesDownNow(now: Self.start + 100).map(\.upstream) == ["a.example:587"])

        let later = Self.envelope()
        queue.enqueue(later)
        #expect(Self.opens(queue.tick(now: Self.start + 200)).isEmpty, "the route is down: no connection")
        let retry = queue.tick(now: Self.start + 100 + Self.minute)
        #expect(Self.opens(retry).count == 1)
        let up = queue.connectionReady(2, now: Self.start + 100 + Self.minute)
        #expect(Self.notes(up) == [.routeUp(route: "a.example:587", downForMilliseconds: Self.minute)])
        #expect(queue.routesDown(now: Self.start + 100 + Self.minute) == 0)
    }

    @Test func aFailedHostHandsItsMailToTheNextOneAndThePrimaryIsTriedAgainAfterItsDownTime() {
        var queue = Self.queue(Self.target(hosts: ["primary.example", "backup.example"]), connections: 1)
        let message = Self.envelope()
        queue.enqueue(message, content: [1])
        #expect(Self.opens(queue.tick(now: Self.start)).map(\.1.host) == ["primary.example"])
        let failed = queue.connectionClosed(1, failure: Self.connectRefused, now: Self.start)
        #expect(Self.records(failed).isEmpty, "the message was not attempted: another host can take it")
        #expect(Self.notes(failed).count == 1)
        guard case .hostDown(_, let host, _, let retryIn)? = Self.notes(failed).first else {
            Issue.record("expected a host-down note, got \(failed)"); return
        }
        #expect(host == "primary.example:587" && retryIn == Self.minute)
        #expect(Self.opens(failed).map(\.1.host) == ["backup.example"])
        #expect(queue.routesDown(now: Self.start) == 0)
        #expect(Self.sends(queue.connectionReady(2, now: Self.start)).map(\.1) == [message.id])
        _ = queue.messageFinished(2, message.id, Self.delivered, tls: nil, now: Self.start)
        _ = queue.connectionClosed(2, failure: nil, now: Self.start)

        let next = Self.envelope()
        queue.enqueue(next)
        #expect(Self.opens(queue.tick(now: Self.start + 10)).map(\.1.host) == ["backup.example"], "the primary is still down")
        _ = queue.connectionReady(3, now: Self.start + 10)
        _ = queue.messageRead(3, next.id, .ready(next), now: Self.start + 10)
        _ = queue.messageFinished(3, next.id, Self.delivered, tls: nil, now: Self.start + 20)
        _ = queue.connectionClosed(3, failure: nil, now: Self.start + 20)
        queue.enqueue(Self.envelope())
        let probe = queue.tick(now: Self.start + Self.minute)
        #expect(Self.opens(probe).map(\.1.host) == ["primary.example"], "the primary is probed again after its down time")
    }

    @Test func everyHostDownIsTheRouteDown() {
        var queue = Self.queue(Self.target(hosts: ["primary.example", "backup.example"]), connections: 1)
        let message = Self.envelope()
        queue.enqueue(message)
        _ = queue.tick(now: Self.start)
        let first = queue.connectionClosed(1, failure: Self.connectRefused, now: Self.start)
        let second = queue.connectionClosed(2, failure: Self.connectRefused, now: Self.start + 5)
        #expect(Self.opens(first).count == 1 && Self.opens(second).isEmpty)
        guard case .routeDown(let route, _, _, true)? = Self.notes(second).first else {
            Issue.record("expected the route down, got \(second)"); return
        }
        #expect(route == "primary.example:587,backup.example:587")
        #expect(Self.records(second).map(\.envelope.id) == [message.id])
    }

    // MARK: policy through the queue

    /// The old scheduler's `postpone` skipped the policy: a message whose spool read kept
    /// failing was retried forever. Now it is an attempt like any other.
    @Test func aMessageThatCannotBeReadIsAnAttemptAndExpiresAtMaxAge() {
        var queue = Self.queue(Self.target(), maxAge: 60 * Self.minute)
        let old = Self.envelope(receivedAt: Self.start - 61 * Self.minute)
        queue.enqueue(old)
        _ = queue.tick(now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        let actions = queue.messageRead(1, old.id, .failed("checksum mismatch"), now: Self.start)
        let records = Self.records(actions)
        #expect(records.map(\.kind) == [.failed])
        #expect(records.first?.decision.reason.contains("cannot read message from spool: checksum mismatch") == true)
        #expect(queue.queuedCount == 0)
    }

    @Test func aReadFailureOfAYoungMessageIsDeferredWithAnAttemptCounted() {
        let message = Self.envelope()
        var queue = Self.withConnectionReady(message, inMemory: false)
        let records = Self.records(queue.messageRead(1, message.id, .failed("EIO"), now: Self.start))
        #expect(records.map(\.kind) == [.deferred(atMilliseconds: Self.start + Self.minute)])
        #expect(records.first?.envelope.attempts == 1)
    }

    @Test func aMessageDeletedWhileQueuedIsDroppedAndItsConnectionServesTheNext() {
        var queue = Self.queue(Self.target(), connections: 1)
        let gone = Self.envelope(), next = Self.envelope()
        queue.enqueue(gone)
        queue.enqueue(next)
        _ = queue.tick(now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        let actions = queue.messageRead(1, gone.id, .notFound, now: Self.start)
        #expect(Self.reads(actions).map(\.1) == [next.id])
        #expect(queue.state(of: gone.id) == .unknown)
    }

    @Test func aConnectionThatCannotTakeItsMessageGivesItBackWithoutAnAttempt() {
        let message = Self.envelope()
        var queue = Self.withConnectionReady(message, inMemory: true)
        #expect(queue.sendRefused(1, message.id, now: Self.start).isEmpty)
        #expect(queue.state(of: message.id) == .waiting)
        #expect(queue.entries[message.id]?.envelope.attempts == 0)
        #expect(queue.entries[message.id]?.content == nil, "the content was handed out; the next attempt reads the spool")
    }

    // MARK: throttling and pace

    static let throttled = DeliveryAttemptOutcome.result(UpstreamDeliveryResult(failure: UpstreamFailure(
        step: .mailFrom, reply: SMTPReply(421, "4.4.2", "Message submission rate for this client has exceeded the configured limit"),
        detail: "")))

    @Test func aThrottlingReplyDefersOnlyThatMessageAndSlowsTheRouteWithoutMarkingItDown() {
        var queue = Self.queue(Self.target(), connections: 4)
        let messages = (0..<4).map { _ in Self.envelope() }
        for message in messages { queue.enqueue(message, content: [1]) }
        #expect(Self.opens(queue.tick(now: Self.start)).count == 4)
        for cid in 1...4 as ClosedRange<UInt64> { _ = queue.connectionReady(cid, now: Self.start) }
        let actions = queue.messageFinished(1, messages[0].id, Self.throttled, tls: nil, now: Self.start + 500)
        let records = Self.records(actions)
        #expect(records.count == 1 && records[0].decision.throttled)
        guard case .deferred = records[0].kind else { Issue.record("expected a deferral"); return }
        guard case .pace(_, let change, _)? = Self.notes(actions).first else { Issue.record("expected a pace note"); return }
        #expect(change.slower && change.connections == 2)
        #expect(queue.routesDown(now: Self.start + 500) == 0)
        #expect(queue.slowedRoutes.map(\.connections) == [2])

        // The others, throttled in the same burst, do not halve it again.
        let more = queue.messageFinished(2, messages[1].id, Self.throttled, tls: nil, now: Self.start + 600)
        #expect(Self.notes(more).isEmpty)
        // Connections over the slower cap are closed as they come free, down to it.
        #expect(Self.quits(queue.connectionReady(1, now: Self.start + 700)) == [1])
        _ = queue.connectionClosed(1, failure: nil, now: Self.start + 710)
        #expect(Self.quits(queue.connectionReady(2, now: Self.start + 720)) == [2])
        _ = queue.connectionClosed(2, failure: nil, now: Self.start + 730)
        _ = queue.messageFinished(3, messages[2].id, Self.delivered, tls: nil, now: Self.start + 740)
        #expect(Self.quits(queue.connectionReady(3, now: Self.start + 750)).isEmpty, "two connections are the cap now")
    }

    @Test func aThrottledRouteComesBackToFullPaceStepByStep() {
        var queue = Self.queue(Self.target(limits: RouteLimits(messagesPerSecond: 10)), connections: 4)
        let message = Self.envelope()
        queue.enqueue(message, content: [1])
        _ = queue.tick(now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        _ = queue.messageFinished(1, message.id, Self.throttled, tls: nil, now: Self.start)
        #expect(queue.slowedRoutes.first?.messagesPerSecond == 5)
        var now = Self.start
        var steps = 0
        while !queue.slowedRoutes.isEmpty, steps < 20 {
            guard let wake = queue.nextWake(now: now) else { break }
            now = max(wake, now + 1)
            if Self.notes(queue.tick(now: now)).contains(where: { if case .pace = $0 { return true }; return false }) { steps += 1 }
        }
        #expect(queue.slowedRoutes.isEmpty)
        #expect(steps == 10, "5/s back to 10/s in steps of a tenth of 5/s")
    }

    @Test func aRouteRateSpacesItsMessages() {
        var queue = Self.queue(Self.target(limits: RouteLimits(messagesPerSecond: 1, connections: 1)))
        let messages = (0..<3).map { _ in Self.envelope() }
        for message in messages { queue.enqueue(message, content: [1]) }
        _ = queue.tick(now: Self.start)
        #expect(Self.sends(queue.connectionReady(1, now: Self.start)).count == 1)
        _ = queue.messageFinished(1, messages[0].id, Self.delivered, tls: nil, now: Self.start + 10)
        #expect(Self.sends(queue.connectionReady(1, now: Self.start + 20)).isEmpty, "no token before a second has passed")
        #expect(queue.nextWake(now: Self.start + 20) == Self.start + 1000)
        #expect(Self.sends(queue.tick(now: Self.start + 1000)).count == 1)
    }

    // MARK: recipient batches

    /// `max_recipients_per_message: 2`, one connection opened for `message`.
    static func twoRecipientsPerTransaction(_ message: SpoolEnvelope) -> DeliveryQueue {
        var queue = queue(target(limits: RouteLimits(maxRecipientsPerMessage: 2)), connections: 1)
        queue.enqueue(message, content: [1])
        _ = queue.tick(now: start)
        return queue
    }

    @Test func anEnvelopeOverTheRecipientCapGoesAsSeveralTransactionsOfOneAttempt() {
        let recipients = (1...5).map { "r\($0)@x.example" }
        let message = Self.envelope(recipients)
        var queue = Self.twoRecipientsPerTransaction(message)
        var sent: [[String]] = []
        var kinds: [DeliveryRecord.Kind] = []
        var actions = queue.connectionReady(1, now: Self.start)
        while let (_, _, batch) = Self.sends(actions).first ?? Self.reads(actions).first {
            sent.append(batch)
            if Self.reads(actions).first != nil { _ = queue.messageRead(1, message.id, .ready(message), now: Self.start) }
            let finished = queue.messageFinished(1, message.id, Self.accepted(batch), tls: nil, now: Self.start)
            kinds += Self.records(finished).map(\.kind)
            actions = queue.connectionReady(1, now: Self.start)
        }
        #expect(sent == [["r1@x.example", "r2@x.example"], ["r3@x.example", "r4@x.example"], ["r5@x.example"]])
        #expect(kinds == [.progressed, .progressed, .delivered])
        #expect(queue.queuedCount == 0 && queue.counters.delivered == 1)
    }

    @Test func aBatchThatIsDeferredDefersTheRestOfTheEnvelopeWithIt() {
        let recipients = (1...4).map { "r\($0)@x.example" }
        let message = Self.envelope(recipients)
        var queue = Self.twoRecipientsPerTransaction(message)
        _ = queue.connectionReady(1, now: Self.start)
        _ = queue.messageFinished(1, message.id, Self.accepted(Array(recipients.prefix(2))), tls: nil, now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        _ = queue.messageRead(1, message.id, .ready(message), now: Self.start)
        let busy = DeliveryAttemptOutcome.result(UpstreamDeliveryResult(failure: UpstreamFailure(
            step: .mailFrom, reply: SMTPReply(451, "4.3.0", "try later"), detail: "")))
        let records = Self.records(queue.messageFinished(1, message.id, busy, tls: nil, now: Self.start))
        #expect(records.map(\.kind) == [.deferred(atMilliseconds: Self.start + Self.minute)])
        #expect(queue.entries[message.id]?.envelope.pendingRecipients == ["r3@x.example", "r4@x.example"])
        #expect(queue.entries[message.id]?.envelope.attempts == 1)
    }

    // MARK: held, control, stop

    @Test func aRouteWithoutItsSecretHoldsItsMailAndSaysSoOnce() {
        var queue = Self.queue(Self.target(missing: "password_file sendgrid.secret does not exist"))
        queue.enqueue(Self.envelope())
        queue.enqueue(Self.envelope())
        let actions = queue.tick(now: Self.start)
        #expect(Self.opens(actions).isEmpty)
        #expect(Self.notes(actions).count == 1)
        #expect(queue.awaitingCredentialCount == 2)
        var rules = queue.rules
        rules.target = { _ in Self.target() }
        queue.replaceRules(rules)
        #expect(Self.opens(queue.tick(now: Self.start + 1)).count == 2)
        #expect(queue.awaitingCredentialCount == 0)
    }

    @Test func flushProbesADownRouteAtOnce() {
        var queue = Self.queue(Self.target(), connections: 1)
        let message = Self.envelope()
        queue.enqueue(message)
        _ = queue.tick(now: Self.start)
        _ = queue.connectionClosed(1, failure: Self.connectRefused, now: Self.start)
        queue.flush(id: nil)
        #expect(Self.opens(queue.tick(now: Self.start + 1)).count == 1)
    }

    @Test func aHeldMessageIsNotSentUntilReleased() {
        var queue = Self.queue(Self.target())
        let message = Self.envelope()
        queue.enqueue(message)
        let held = queue.setHeld(message.id, true)
        #expect(held)
        #expect(Self.opens(queue.tick(now: Self.start)).isEmpty)
        let released = queue.setHeld(message.id, false)
        #expect(released)
        #expect(Self.opens(queue.tick(now: Self.start)).count == 1)
        let heldInFlight = queue.setHeld(message.id, true)
        #expect(!heldInFlight, "in flight: cannot be held")
    }

    @Test func stopQuitsIdleConnectionsAndLeavesOnlyBusyOnesInFlight() {
        var queue = Self.queue(Self.target(), connections: 1)
        let busy = Self.envelope(), waiting = Self.envelope()
        queue.enqueue(busy, content: [1])
        queue.enqueue(waiting, content: [1])
        _ = queue.tick(now: Self.start)
        _ = queue.connectionReady(1, now: Self.start)
        let stop = queue.stop()
        #expect(Self.quits(stop).isEmpty, "the busy connection finishes its message")
        #expect(queue.state(of: waiting.id) == .waiting && queue.state(of: busy.id) == .inFlight)
        let after = queue.messageFinished(1, busy.id, Self.delivered, tls: nil, now: Self.start)
        #expect(Self.records(after).count == 1)
        #expect(Self.quits(queue.connectionReady(1, now: Self.start)) == [1])
        #expect(!queue.hasInFlight)
        #expect(queue.tick(now: Self.start + Self.minute).isEmpty)
    }

    /// Issue 19: a stop lets a transaction under way finish but begins none. A message whose
    /// spool read ends after the stop is not sent: it waits for the next start, and the
    /// connection says QUIT.
    @Test func aReadThatEndsAfterStopIsNotSentButRequeued() {
        var queue = Self.queue(Self.target(), connections: 1)
        let message = Self.envelope()
        queue.enqueue(message)
        _ = queue.tick(now: Self.start)
        let reads = Self.reads(queue.connectionReady(1, now: Self.start))
        #expect(reads.count == 1 && reads.first?.1 == message.id)
        #expect(Self.quits(queue.stop()).isEmpty, "the connection is busy reading for its message")
        #expect(queue.hasInFlight)
        let after = queue.messageRead(1, message.id, .ready(message), now: Self.start)
        #expect(!after.contains { if case .send = $0 { return true }; return false }, "no new transaction while stopping")
        #expect(Self.quits(after) == [1])
        #expect(!queue.hasInFlight && queue.state(of: message.id) == .waiting)
    }
}
