import Foundation
import Logging
@testable import SmarthostCore

/// Both delivery clocks, set by the test: the monotonic one and the wall one move apart
/// when the test says so (a wall-clock jump), never on their own.
final class DeliveryTestClocks: @unchecked Sendable {
    private let lock = NSLock()
    private var monotonicNow: Int64
    private var wallNow: Int64

    /// The wall clock starts near `SpoolTestData`'s `receivedAt`, so no message is old.
    init(monotonic: Int64 = 50_000_000, wall: Int64 = 1_700_000_000_000) {
        monotonicNow = monotonic
        wallNow = wall
    }

    var monotonic: Int64 { lock.withLock { monotonicNow } }
    var wall: Int64 { lock.withLock { wallNow } }

    /// Time passes: both clocks move.
    func advance(milliseconds: Int64) {
        lock.withLock {
            monotonicNow += milliseconds
            wallNow += milliseconds
        }
    }

    /// Someone sets the system time: only the wall clock moves.
    func jumpWall(milliseconds: Int64) {
        lock.withLock { wallNow += milliseconds }
    }

    var clocks: DeliveryClocks {
        DeliveryClocks(monotonic: { [self] in monotonic }, wall: { [self] in wall })
    }
}

/// A connection written for the driver's tests: it keeps the `UpstreamConnection` promises
/// (`UpstreamConnectionContractTests` checks it does) and otherwise does what the test says
/// — become ready, finish the message in hand with a given result, hang up. Loop thread only.
final class FakeUpstreamConnection: UpstreamConnection {
    enum State: Equatable { case created, starting, idle, busy(SpoolID), quitting, closed }

    let serial: UInt64
    let target: UpstreamTarget
    var onStep: ((String, Double) -> Void)?
    var onTranscript: ((UpstreamTranscriptLine) -> Void)?
    private weak var owner: (any UpstreamConnectionOwner)?
    private(set) var state = State.created
    private(set) var sent: [(id: SpoolID, message: UpstreamMessage)] = []
    private(set) var quits = 0
    /// Broken promises of the caller: `send` while it could not, `start` twice.
    private(set) var misuse: [String] = []
    /// Set: `start()` fails at once, inside the call, as a refused connect does.
    var failAtStart: UpstreamFailure?
    /// Set: the connection runs by itself — ready after start, each message delivered and
    /// ready again, QUIT answered — all on later turns of the loop, never inside the call.
    var autopilot: EventLoop?
    /// Under autopilot: messages stay in hand until the test says (`finish`, `hangUp`).
    var holdsMessages = false

    init(serial: UInt64, target: UpstreamTarget, owner: any UpstreamConnectionOwner) {
        self.serial = serial
        self.target = target
        self.owner = owner
    }

    var canSend: Bool { state == .idle }
    var tlsDescription: String? { nil }

    func start() {
        guard state == .created else { return misuse.append("start twice") }
        state = .starting
        if let failAtStart { return hangUp(failAtStart) }
        later { $0.becomeReady() }
    }

    func send(messageID: SpoolID, message: UpstreamMessage) {
        guard canSend else { return misuse.append("send \(messageID) while \(state)") }
        state = .busy(messageID)
        sent.append((messageID, message))
        if holdsMessages { return }
        later { $0.finish(.transaction(Self.delivered(message))) }
    }

    func quit() {
        quits += 1
        guard state == .idle else { return close() }
        state = .quitting
        later { $0.hangUp(nil) }
    }

    func close() {
        hangUp(nil)
    }

    // MARK: What the test makes the upstream do

    func becomeReady() {
        guard state == .starting || state == .created || state == .idle else { return }
        state = .idle
        owner?.upstreamConnection(self, .ready)
    }

    /// The message in hand is done; the connection is ready again unless `thenReady` is false.
    func finish(_ result: UpstreamSendResult, thenReady: Bool = true) {
        guard case .busy(let id) = state else { return }
        state = .starting
        owner?.upstreamConnection(self, .finished(id, result))
        if thenReady, state == .starting { becomeReady() }
    }

    /// The connection ends: a message in hand is reported not sent first, then `.closed`, once.
    func hangUp(_ failure: UpstreamFailure?) {
        guard state != .closed else { return }
        if case .busy(let id) = state {
            state = .quitting
            owner?.upstreamConnection(self, .finished(id, .notSent(failure ?? .connectionLost(to: target.displayName))))
        }
        state = .closed
        owner?.upstreamConnection(self, .closed(failure))
    }

    private func later(_ step: @escaping (FakeUpstreamConnection) -> Void) {
        guard let loop = autopilot else { return }
        _ = loop.schedule(afterMilliseconds: 0) { [weak self] in
            if let self { step(self) }
        }
    }

    static func delivered(_ message: UpstreamMessage) -> UpstreamDeliveryResult {
        UpstreamDeliveryResult(accepted: message.recipients.map { UpstreamRecipientResult(recipient: $0, reply: SMTPReply(250, "2.1.5", "ok")) },
                               dataReply: SMTPReply(250, "2.0.0", "queued"))
    }
}

/// The driver's connection factory in tests: makes fakes and keeps them, in order.
final class FakeUpstreamFactory: UpstreamConnecting {
    private(set) var made: [FakeUpstreamConnection] = []
    /// Each new connection fails at start with this (nil: it starts).
    var failAtStart: UpstreamFailure?
    var autopilot: EventLoop?

    func connection(serial: UInt64, target: UpstreamTarget, tlsContext: @escaping () throws -> TLSContext,
                    owner: any UpstreamConnectionOwner) -> any UpstreamConnection {
        let connection = FakeUpstreamConnection(serial: serial, target: target, owner: owner)
        connection.failAtStart = failAtStart
        connection.autopilot = autopilot
        made.append(connection)
        return connection
    }

    /// Connections not closed yet.
    var open: [FakeUpstreamConnection] { made.filter { $0.state != .closed } }
}

/// A driver on a real loop thread with a real spool, fake connections and test clocks.
/// Everything the driver owns is touched on the loop only (`sync`).
final class DeliveryDriverRig: @unchecked Sendable {
    static let config = """
        queue: { retry_min: 1m, retry_max: 1h, max_age: 1d }
        default:
          host: 127.0.0.1
          port: 2525
          tls: none
        """

    let directory = SpoolTestDirectory()
    let spool: Spool
    let runner: ControlLoopThread
    let clocks = DeliveryTestClocks()
    let factory = FakeUpstreamFactory()
    let driver: DeliveryDriver
    private var finished = false

    init(config: String = DeliveryDriverRig.config) throws {
        spool = try Spool(root: directory.root)
        runner = try ControlLoopThread()
        let environment = DeliveryEnvironment(config: try ConfigTestSupport.parse(config))
        driver = DeliveryDriver(loop: runner.loop, spool: spool, environment: environment,
                                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
                                clocks: clocks.clocks, connections: factory)
        runner.start()
    }

    /// Runs on the loop thread and waits for it.
    func sync<T>(_ body: @escaping () -> T) -> T {
        runner.sync(body)
    }

    /// A message in the spool (org-less: the default route), received "now" on the wall clock.
    func store(recipients: [String] = ["ops@example.com"], tag: String = "") throws -> SpoolEnvelope {
        let receivedAt = clocks.wall / 1000
        let id = try SpoolTestData.store(spool, SpoolTestData.message(lines: 3, tag: tag)) { id in
            SpoolEnvelope(id: id, receivedAt: receivedAt, sender: "app@example.com", recipients: recipients,
                          heloName: "localhost", clientAddress: "127.0.0.1")
        }.get()
        return try spool.envelope(id)
    }

    /// The connection the driver made `index`-th, waiting up to 10 s for it (a due
    /// message is taken on the timer's turn of the loop, not inside the event).
    func connection(_ index: Int) -> FakeUpstreamConnection? {
        let factory = self.factory
        let made = { self.sync { factory.made.count > index ? factory.made[index] : nil } }
        _ = eventually(timeout: 10) { made() != nil }
        return made()
    }

    /// The message's spool state in `queue/`; nil once it has left it.
    func queued(_ id: SpoolID) -> SpoolEnvelope? {
        (try? spool.list(.queue))?.first { $0.id == id }
    }

    /// The message's bytes as stored, for a hand-off with content in memory.
    func content(_ id: SpoolID) throws -> [UInt8] {
        try spool.readMessage(id)
    }

    func finish() {
        guard !finished else { return }
        finished = true
        runner.stop { [driver] in driver.shutdown() }
        spool.shutdown()
        directory.remove()
    }

    deinit { finish() }
}
