import Testing
@testable import SmarthostCore

/// The delivery queue driven by a simulated world that does everything real connections
/// do, in random orders (seeded, so a failure replays): connections that fail, throttle,
/// drop a message, close while a message is read; reads that fail; time that jumps. After
/// each event the queue must be consistent, and once the upstream is healthy again every
/// message must end delivered or dead-lettered exactly once — nothing lost, nothing twice.
@Suite struct DeliveryQueueSimulationTests {
    enum SimConnection: Equatable {
        case connecting
        case ready
        /// Given a message to read: waiting for the spool read.
        case reading(SpoolID, [String])
        case busy(SpoolID, [String])
        case quitting
    }

    struct World {
        var queue: DeliveryQueue
        var now: Int64 = DeliveryQueueTests.start
        var rng: SplitMix64
        var connections: [DeliveryQueue.ConnectionID: SimConnection] = [:]
        var messages: [SpoolID: SpoolEnvelope] = [:]
        var delivered: [SpoolID: Int] = [:]
        var failed: [SpoolID: Int] = [:]
        /// Recipients the upstream accepted, per message: each exactly once in the end.
        var accepted: [SpoolID: [String]] = [:]
        var healthy = false
        var problems: [String] = []

        mutating func apply(_ actions: [DeliveryAction]) {
            for action in actions {
                switch action {
                case .open(let cid, let target):
                    if connections[cid] != nil { problems.append("connection \(cid) opened twice") }
                    if !queue.rules.target(SpoolEnvelope.simulated).hosts.contains(target.host) { problems.append("opened to a host not of the route") }
                    connections[cid] = .connecting
                case .send(let cid, let id, let message):
                    // The one hand-off: from memory on a ready connection, or the message read for it.
                    if case .reading(id, let recipients)? = connections[cid] {
                        if message.recipients != recipients { problems.append("\(id) read for \(recipients), sent to \(message.recipients)") }
                        connections[cid] = .busy(id, recipients)
                    } else {
                        hand(cid, id, message.recipients, reading: false)
                    }
                case .read(let cid, let envelope, let recipients):
                    hand(cid, envelope.id, recipients, reading: true)
                case .quit(let cid):
                    guard let state = connections[cid] else { problems.append("quit of unknown connection \(cid)"); continue }
                    if case .busy = state { problems.append("quit of connection \(cid) while it sends") }
                    connections[cid] = .quitting
                case .record(let record):
                    let id = record.envelope.id
                    switch record.kind {
                    case .delivered: delivered[id, default: 0] += 1
                    case .failed: failed[id, default: 0] += 1
                    case .deferred, .progressed: break
                    }
                case .note:
                    break
                }
            }
        }

        mutating func hand(_ cid: DeliveryQueue.ConnectionID, _ id: SpoolID, _ recipients: [String], reading: Bool) {
            guard connections[cid] == .ready else {
                problems.append("message \(id) handed to connection \(cid) in state \(String(describing: connections[cid]))")
                return
            }
            for (other, state) in connections where other != cid {
                if case .busy(id, _) = state { problems.append("message \(id) on two connections") }
                if case .reading(id, _) = state { problems.append("message \(id) on two connections") }
            }
            if recipients.isEmpty { problems.append("message \(id) handed with no recipient") }
            connections[cid] = reading ? .reading(id, recipients) : .busy(id, recipients)
        }

        mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

        static let lost = UpstreamFailure(step: .dataEnd, detail: "connection lost", mayHaveBeenDelivered: true)
        static let refused = UpstreamFailure(step: .connect, detail: "Connection refused")
        static let throttledReply = SMTPReply(421, "4.4.2", "Message submission rate for this client has exceeded the configured limit")

        /// What the upstream says to one transaction.
        mutating func outcome(for recipients: [String], of id: SpoolID) -> DeliveryAttemptOutcome {
            func ok(_ r: String) -> UpstreamRecipientResult { UpstreamRecipientResult(recipient: r, reply: SMTPReply(250, "2.1.5", "ok")) }
            if healthy || chance(55) {
                accepted[id, default: []] += recipients
                return .result(UpstreamDeliveryResult(accepted: recipients.map(ok), dataReply: SMTPReply(250, "2.0.0", "ok")))
            }
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                return .result(UpstreamDeliveryResult(failure: UpstreamFailure(step: .mailFrom, reply: Self.throttledReply, detail: "")))
            case 1:
                return .result(UpstreamDeliveryResult(failure: UpstreamFailure(step: .mailFrom, reply: SMTPReply(451, "4.3.0", "later"), detail: "")))
            case 2:
                // The first recipient refused for good, the rest taken.
                let rest = Array(recipients.dropFirst())
                accepted[id, default: []] += rest
                let refused = [UpstreamRecipientResult(recipient: recipients[0], reply: SMTPReply(550, "5.1.1", "no such user"))]
                return .result(UpstreamDeliveryResult(accepted: rest.map(ok), refused: refused,
                                                      dataReply: rest.isEmpty ? nil : SMTPReply(250, "2.0.0", "ok"),
                                                      failure: rest.isEmpty ? UpstreamFailure(step: .rcptTo, reply: SMTPReply(550, "5.1.1", "no such user"), detail: "no recipient accepted") : nil))
            default:
                return .setupFailed(Self.lost)
            }
        }

        /// One random thing happens in the world.
        mutating func step(messageLimit: Int) {
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 12, messages.count < messageLimit {
                let count = Int.random(in: 1...5, using: &rng)
                var envelope = DeliveryQueueTests.envelope((0..<count).map { "r\($0)@x.example" }, receivedAt: now)
                envelope.size = count
                messages[envelope.id] = envelope
                queue.enqueue(envelope, content: chance(50) ? [1] : nil)
                return
            }
            if roll < 30 {
                now += Int64.random(in: 0...(chance(10) ? 120_000 : 3_000), using: &rng)
                apply(queue.tick(now: now))
                return
            }
            guard let (cid, state) = connections.randomElement(using: &rng) else { return }
            switch state {
            case .connecting:
                if healthy || chance(70) {
                    connections[cid] = .ready
                    apply(queue.connectionReady(cid, now: now))
                } else {
                    connections[cid] = nil
                    let failure = chance(30) ? UpstreamFailure(step: .greeting, reply: Self.throttledReply, detail: "") : Self.refused
                    apply(queue.connectionClosed(cid, failure: failure, now: now))
                }
            case .ready:
                if chance(15) {
                    connections[cid] = nil
                    apply(queue.connectionClosed(cid, failure: nil, now: now))
                }
            case .reading(let id, let recipients):
                if chance(10) {
                    // The connection dies while the worker reads.
                    connections[cid] = nil
                    apply(queue.connectionClosed(cid, failure: Self.lost, now: now))
                } else {
                    let result: DeliveryQueue.ReadResult = !healthy && chance(10) ? .failed("EIO") : .ready(messages[id]!, recipients: recipients)
                    if case .failed = result { connections[cid] = .ready }
                    apply(queue.messageRead(cid, id, result, now: now))
                }
            case .busy(let id, let recipients):
                if !healthy && chance(10) {
                    // The connection reports its message, then its close.
                    connections[cid] = nil
                    apply(queue.messageFinished(cid, id, .setupFailed(Self.lost), tls: nil, now: now))
                    apply(queue.connectionClosed(cid, failure: Self.lost, now: now))
                } else {
                    connections[cid] = .ready
                    let outcome = outcome(for: recipients, of: id)
                    apply(queue.messageFinished(cid, id, outcome, tls: nil, now: now))
                    if connections[cid] == .ready { apply(queue.connectionReady(cid, now: now)) }
                }
            case .quitting:
                connections[cid] = nil
                apply(queue.connectionClosed(cid, failure: nil, now: now))
            }
        }

        /// The queue's own view agrees with the world's.
        mutating func check() {
            for (cid, connection) in queue.connections {
                guard connections[cid] != nil else { problems.append("the queue keeps closed connection \(cid)"); continue }
                _ = connection
            }
            for (id, entry) in queue.entries {
                if entry.connection != nil, entry.route == nil { problems.append("\(id) on a connection but in no route") }
                if delivered[id] != nil || failed[id] != nil { problems.append("\(id) settled but still queued") }
            }
        }
    }

    @Test(arguments: 1...24)
    func nothingIsLostOrSettledTwiceWhateverTheOrderOfEvents(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed))
        let hosts = Int.random(in: 0..<2, using: &rng) == 0 ? ["a.example"] : ["a.example", "b.example"]
        let limits = RouteLimits(messagesPerSecond: Int.random(in: 0..<3, using: &rng) == 0 ? 5 : nil,
                                 connections: Int.random(in: 1...3, using: &rng),
                                 maxRecipientsPerMessage: Int.random(in: 0..<2, using: &rng) == 0 ? 2 : nil)
        var world = World(queue: DeliveryQueueTests.queue(DeliveryQueueTests.target(hosts: hosts, limits: limits),
                                                          maxAge: 24 * 60 * DeliveryQueueTests.minute),
                          rng: rng)
        for _ in 0..<600 {
            world.step(messageLimit: 40)
            world.check()
        }
        // The upstream is healthy again: everything must settle.
        world.healthy = true
        var rounds = 0
        while world.queue.queuedCount > 0 && rounds < 20_000 {
            world.step(messageLimit: 0)
            if rounds % 50 == 0 {
                if let wake = world.queue.nextWake(now: world.now) { world.now = max(world.now, wake) }
                world.apply(world.queue.tick(now: world.now))
            }
            rounds += 1
        }
        world.check()
        #expect(world.problems.isEmpty, "\(world.problems.prefix(5))")
        #expect(world.queue.queuedCount == 0, "still queued after the upstream came back: \(world.queue.queuedCount)")
        for (id, envelope) in world.messages {
            let settled = (world.delivered[id] ?? 0) + (world.failed[id] ?? 0)
            #expect(settled == 1, "\(id) settled \(settled) times")
            let accepted = world.accepted[id] ?? []
            // A transaction lost after its data may have been delivered (the retry may repeat
            // it, logged as a possible duplicate); the world counts only what it answered 250 to.
            #expect(Set(accepted).isSubset(of: Set(envelope.recipients)))
            #expect(accepted.count == Set(accepted).count, "\(id): a recipient the upstream took was sent again: \(accepted)")
        }
        #expect(world.queue.counters.delivered + world.queue.counters.failed == world.messages.count)
        #expect(world.queue.contentInMemoryBytes == 0)
    }
}

extension SpoolEnvelope {
    /// Any envelope: the simulated world has one route for all.
    static let simulated = SpoolEnvelope(id: SpoolIDGenerator().next(), receivedAt: 0, sender: "s@x.example",
                                         recipients: ["r@x.example"], heloName: "localhost", clientAddress: "127.0.0.1")
}
