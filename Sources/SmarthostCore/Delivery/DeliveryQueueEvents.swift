/// The delivery queue's connection events and what it does with outcomes: a connection
/// ready, a message read or finished, a connection closed; the policy's decisions
/// (`DeliveryPolicy.decide` for the message, `siteOutcome` for its host and route) applied.
extension DeliveryQueue {
    mutating func connectionReady(_ cid: ConnectionID, now: DeliveryInstant) -> [DeliveryAction] {
        let now = now.monotonic
        guard let connection = connections[cid], routes[connection.route] != nil else { return [] }
        let label = label(for: connection.route)
        var actions = routes[connection.route]!.connected(to: connection.host, now: now, label: label).map(DeliveryAction.note)
        if stopping || connection.state == .quitting {
            connections[cid]?.state = .quitting
            return actions + [.quit(cid)]
        }
        connections[cid]?.state = .idle(since: now)
        let route = routes[connection.route]!
        // A primary back up: a connection to a fallback host is not kept for more mail.
        // Over a throttled route's cap: one connection fewer, as the upstream asked.
        let fallback = route.availableHost(now: now).map { $0 != connection.host && route.waiting.isEmpty } ?? false
        if fallback || route.connections.count > route.pace.connections {
            connections[cid]?.state = .quitting
            return actions + [.quit(cid)]
        }
        actions += dispatch(connection.route, now: now)
        return actions
    }

    enum ReadResult {
        /// Read and prepared for its upstream: it goes (`.send`).
        case ready(UpstreamMessage)
        /// Deleted by an operator (or already settled): nothing left to deliver.
        case notFound
        case failed(String)
    }

    /// The spool reader is done with the message of this connection.
    mutating func messageRead(_ cid: ConnectionID, _ id: SpoolID, _ result: ReadResult,
                              now instant: DeliveryInstant) -> [DeliveryAction] {
        let now = instant.monotonic
        // Anything else: the connection closed meanwhile, and the message was requeued then.
        guard let connection = connections[cid], connection.state == .preparing(id) else { return [] }
        switch result {
        case .ready where stopping:
            // A transaction not begun is not begun while stopping: the message goes at the next start.
            requeue(id, at: entries[id]?.dueAt ?? now)
            connections[cid]?.state = .quitting
            return [.quit(cid)]
        case .ready(let message):
            connections[cid]?.state = .sending(id)
            return [.send(cid, id, message)]
        case .notFound:
            removeEntry(id)
            connections[cid]?.state = .idle(since: now)
            return dispatch(connection.route, now: now)
        case .failed(let reason):
            connections[cid]?.state = .idle(since: now)
            let failure = UpstreamFailure(step: .protocol, detail: "cannot read message from spool: \(reason)")
            return settle(id, .setupFailed(failure), connection: connection, tls: nil, now: instant)
                + dispatch(connection.route, now: now)
        }
    }

    /// The connection could not take the message it was given (it is closing): the
    /// message is due again at once, no attempt counted.
    mutating func sendRefused(_ cid: ConnectionID, _ id: SpoolID, now: DeliveryInstant) -> [DeliveryAction] {
        guard let connection = connections[cid], connection.state == .sending(id) || connection.state == .preparing(id) else { return [] }
        connections[cid]?.state = .quitting
        requeue(id, at: now.monotonic)
        return []
    }

    mutating func messageFinished(_ cid: ConnectionID, _ id: SpoolID, _ outcome: DeliveryAttemptOutcome,
                                  tls: String?, now: DeliveryInstant) -> [DeliveryAction] {
        guard let connection = connections[cid], connection.state == .sending(id) else { return [] }
        connections[cid]?.state = .notReady
        return settle(id, outcome, connection: connection, tls: tls, now: now)
    }

    mutating func connectionClosed(_ cid: ConnectionID, failure: UpstreamFailure?, now instant: DeliveryInstant) -> [DeliveryAction] {
        let now = instant.monotonic
        guard let connection = connections.removeValue(forKey: cid) else { return [] }
        var actions: [DeliveryAction] = []
        routes[connection.route]?.connections.remove(cid)
        switch connection.state {
        case .preparing(let id):
            requeue(id, at: now)
        case .sending(let id):
            // A connection reports its message before it closes; if not, it was lost with it.
            let lost = failure ?? UpstreamFailure(step: .protocol, detail: "connection to \(connection.host) lost")
            actions += settle(id, .setupFailed(lost), connection: connection, tls: nil, now: instant)
        default:
            break
        }
        guard routes[connection.route] != nil else { return actions }
        if let failure { actions += siteFailed(connection, failure, now: instant) }
        actions += dispatch(connection.route, now: now)
        dropIfUnused(connection.route)
        return actions
    }

    /// The policy's word on the connection's host and route, applied; when the route went
    /// down, every message waiting for it had its attempt: it failed the same way.
    private mutating func siteFailed(_ connection: Connection, _ failure: UpstreamFailure,
                                     now instant: DeliveryInstant) -> [DeliveryAction] {
        let now = instant.monotonic
        let key = connection.route
        guard let route = routes[key] else { return [] }
        let outcome = rules.policy.siteOutcome(failure, hostDownForMilliseconds: route.hostDownFor(connection.host, now: now),
                                               otherHostUp: route.otherHostUp(than: connection.host, now: now))
        let label = label(for: key)
        var actions = routes[key]!.failed(connection.host, outcome, failure: failure, sentAt: connection.lastStartedAt,
                                          now: now, label: label).map(DeliveryAction.note)
        guard case .routeDown = outcome else { return actions }
        let waiting = routes[key]!.waiting
        routes[key]!.waiting.removeAll()
        let attempt = Connection(route: key, host: connection.host, state: .notReady)
        for id in waiting {
            actions += settle(id, .setupFailed(failure), connection: attempt, tls: nil, now: instant)
        }
        return actions
    }

    // MARK: Outcomes

    /// Applies the policy's decision to the message and hands the record to the recorder.
    /// The policy reasons in wall time (the message's age, its next attempt as the spool
    /// keeps it); the queue's own deadline for it is the same delay on the monotonic clock.
    mutating func settle(_ id: SpoolID, _ outcome: DeliveryAttemptOutcome, connection: Connection,
                         tls: String?, now instant: DeliveryInstant) -> [DeliveryAction] {
        let now = instant.monotonic
        guard var entry = entries[id] else { return [] }
        let pending = entry.envelope.pendingRecipients
        let batch = entry.batch.isEmpty ? pending : entry.batch.filter(pending.contains)
        let later = pending.filter { !batch.contains($0) }
        entry.route = nil
        entry.connection = nil
        entry.batch = []
        let decision = rules.policy.decide(outcome, pendingRecipients: batch, attempts: entry.envelope.attempts + 1,
                                           earlierRefusals: entry.envelope.refusedRecipients, laterRecipients: later,
                                           receivedAtMilliseconds: entry.envelope.queuedAt * 1000,
                                           nowMilliseconds: instant.wall)
        if decision.disposition != .nextBatch { entry.envelope.attempts += 1 }
        entry.envelope.doneRecipients.formUnion(decision.delivered)
        entry.envelope.refusedRecipients.merge(decision.refused) { _, new in new }
        let route = routes[connection.route]
        var record = DeliveryRecord(kind: .delivered, envelope: entry.envelope, decision: decision,
                                    route: route?.target.routeName ?? connection.host,
                                    host: DeliveryTarget.endpoint(connection.host, route?.target.port ?? 0),
                                    remoteHost: connection.host, tls: tls,
                                    dataReply: { if case .result(let result) = outcome { return result.dataReply }; return nil }(),
                                    atMilliseconds: instant.wall)
        var actions: [DeliveryAction] = []
        if decision.throttled, routes[connection.route] != nil {
            let label = label(for: connection.route)
            actions += routes[connection.route]!.throttled(now: now, sentAt: entry.startedAt, reply: decision.reason,
                                                           retryAfter: decision.retryAfterMilliseconds,
                                                           label: label).map(DeliveryAction.note)
        }
        switch decision.disposition {
        case .remove:
            removeEntry(id)
            counters.delivered += 1
        case .nextBatch:
            record.kind = .progressed
            entries[id] = entry
            // The rest of the envelope goes next, ahead of messages that came later.
            if routes[connection.route] != nil, !stopping {
                entries[id]?.route = connection.route
                routes[connection.route]!.waiting.insert(id, at: 0)
            } else {
                setDue(id, now)
            }
        case .retry(let at):
            let warn = !entry.envelope.delayWarned && rules.delayWarningDue(entry.envelope, instant.wall)
            if warn { entry.envelope.delayWarned = true }
            record.kind = .deferred(atMilliseconds: at)
            record.warnDelay = warn
            record.envelope = entry.envelope
            entries[id] = entry
            setDue(id, instant.monotonic(atWall: at))
            counters.deferred += 1
        case .deadLetter:
            removeEntry(id)
            counters.failed += 1
            record.kind = .failed
        }
        return [.record(record)] + actions
    }
}
