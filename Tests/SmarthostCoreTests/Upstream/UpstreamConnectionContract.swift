import Foundation
@testable import SmarthostCore

/// Checks that an `UpstreamConnection` keeps the promises its protocol documents, whatever
/// the transport: `.ready` only with nothing in hand and `canSend` true; at most one message
/// in flight (`canSend` false from `send` until its `.finished`); exactly one `.finished`
/// per `send`, for its id; `.closed` exactly once and last, with nothing in hand; `canSend`
/// false once closed. It plays the owner: on each `.ready` it sends the next message of
/// `messages`, then says QUIT; `closeAfterSendMilliseconds` cuts the connection off that
/// long after a send. Loop thread only, except `result` (which hops onto it).
final class UpstreamConnectionContract: UpstreamConnectionOwner, @unchecked Sendable {
    enum Seen: Equatable, CustomStringConvertible {
        case ready
        case finished(SpoolID, delivered: Bool)
        case closed(failed: Bool)

        var description: String {
            switch self {
            case .ready: "ready"
            case .finished(let id, let delivered): "finished(\(id), \(delivered ? "delivered" : "not delivered"))"
            case .closed(let failed): failed ? "closed(failure)" : "closed"
            }
        }
    }

    private let runner: ControlLoopThread
    private var messages: [UpstreamMessage]
    private let closeAfter: Int64?
    private let ids = SpoolIDGenerator()
    private var connection: (any UpstreamConnection)?
    private var inHand: SpoolID?
    private var sentIDs: [SpoolID] = []
    private var isClosed = false
    private(set) var seen: [Seen] = []
    private(set) var broken: [String] = []
    private(set) var closeFailure: UpstreamFailure?
    /// Each `.finished`'s result, in order.
    private(set) var results: [UpstreamSendResult] = []

    /// Makes the connection (on the loop, with this as its owner) and starts it.
    init(runner: ControlLoopThread, messages: [UpstreamMessage], closeAfterSendMilliseconds: Int64? = nil,
         make: @escaping (any UpstreamConnectionOwner) -> any UpstreamConnection) {
        self.runner = runner
        self.messages = messages
        self.closeAfter = closeAfterSendMilliseconds
        runner.sync { [self] in
            let connection = make(self)
            self.connection = connection
            connection.start()
        }
    }

    var isFinished: Bool { runner.sync { [self] in isClosed } }

    /// What happened, and every promise broken: the events seen, the ids sent, and the
    /// broken promises (the end checks included). Waits up to `timeout` for `.closed`.
    func result(timeout: TimeInterval = 20) -> (seen: [Seen], sent: [SpoolID], broken: [String]) {
        _ = eventually(timeout: timeout) { isFinished }
        return runner.sync { [self] in
            var broken = self.broken
            if !isClosed { broken.append("no .closed within \(timeout) s") }
            let finished = seen.compactMap { if case .finished(let id, _) = $0 { return id }; return nil }
            if finished != sentIDs { broken.append("finished \(finished) for sends \(sentIDs)") }
            if seen.filter({ if case .closed = $0 { return true }; return false }).count > 1 { broken.append("closed twice") }
            return (seen, sentIDs, broken)
        }
    }

    func upstreamConnection(_ connection: any UpstreamConnection, _ event: UpstreamConnectionEvent) {
        if isClosed { broken.append("\(event) after .closed") }
        switch event {
        case .ready:
            seen.append(.ready)
            if let inHand { broken.append(".ready with \(inHand) in hand") }
            if !connection.canSend { broken.append(".ready but canSend is false") }
            next(connection)
        case .finished(let id, let result):
            results.append(result)
            if case .transaction(let transaction) = result {
                seen.append(.finished(id, delivered: transaction.failure == nil))
            } else {
                seen.append(.finished(id, delivered: false))
            }
            if id != inHand { broken.append(".finished(\(id)) with \(inHand.map { "\($0)" } ?? "nothing") in hand") }
            inHand = nil
        case .closed(let failure):
            seen.append(.closed(failed: failure != nil))
            closeFailure = failure
            isClosed = true
            if let inHand { broken.append(".closed with \(inHand) in hand, never finished") }
            if connection.canSend { broken.append("canSend is true after .closed") }
        }
    }

    /// The owner's side of the promise: send only when told ready, one at a time.
    private func next(_ connection: any UpstreamConnection) {
        guard !messages.isEmpty else { return connection.quit() }
        let id = ids.next()
        inHand = id
        sentIDs.append(id)
        connection.send(messageID: id, message: messages.removeFirst())
        if connection.canSend, inHand != nil { broken.append("canSend is true with \(id) in hand") }
        if let closeAfter {
            _ = runner.loop.schedule(afterMilliseconds: closeAfter) { connection.close() }
        }
    }

    static func message(_ subject: String) -> UpstreamMessage {
        UpstreamMessage(sender: "app@example.com", recipients: ["ops@example.com"],
                        content: Array("Subject: \(subject)\r\n\r\nbody of \(subject)\r\n".utf8))
    }
}
