import Logging

/// `/metrics` on the event loop: one short-lived connection per scrape, a bounded request,
/// a deadline, `Connection: close`. On the loop a scrape only sets a few gauges (`refresh`)
/// and copies the values (`MetricsRegistry.snapshot`); the text, whose formatting and
/// sorting took 0.8 s of the loop for 660 000 series (issue 19), is made on the
/// `metrics-render` thread and written back on the loop, so a scrape never delays a
/// greeting. (The labels are bounded by the configuration now, but 10 000 orgs are still
/// 100 000 series.)
final class MetricsServer {
    private let loop: EventLoop
    private let logger: Logger
    private let metrics: RelayMetrics
    private var acceptor: Acceptor?
    private var connections: [ObjectIdentifier: MetricsConnection] = [:]
    private lazy var renderer = WorkerThread(name: "metrics-render")
    private var rendererStarted = false
    /// Sets the scrape-time gauges (queue by org and route, spool free space).
    var refresh: () -> Void = {}

    static let requestDeadlineMilliseconds: Int64 = 5_000
    static let maxConnections = 16

    private(set) var address: SocketAddress?

    init(loop: EventLoop, logger: Logger, metrics: RelayMetrics, socket: ListeningSocket) throws(SystemError) {
        self.loop = loop
        self.logger = logger
        self.metrics = metrics
        self.address = socket.address
        acceptor = try Acceptor(loop: loop, socket: socket, logger: logger) { [unowned self] fd, peer in
            self.accepted(fd: fd, peer: peer)
        }
    }

    private func accepted(fd: Int32, peer: SocketAddress) {
        guard connections.count < Self.maxConnections,
              let stream = try? StreamConnection(loop: loop, fd: fd, peer: peer) else {
            Syscall.close(fd)
            return
        }
        let connection = MetricsConnection(stream: stream, server: self)
        connections[ObjectIdentifier(connection)] = connection
        connection.deadline = loop.schedule(afterMilliseconds: Self.requestDeadlineMilliseconds) { [weak connection] in
            connection?.stream.close()
        }
    }

    /// The exposition text, to `completion` on the loop.
    func body(_ completion: @escaping ([UInt8]) -> Void) {
        refresh()
        let snapshot = metrics.snapshot()
        let back = LoopCallback(completion)
        rendererStarted = true
        renderer.submit { [loop] in
            let text = snapshot.exposition()
            loop.execute { back.call(text) }
        }
    }

    func closed(_ connection: MetricsConnection) {
        loop.cancel(connection.deadline)
        connections.removeValue(forKey: ObjectIdentifier(connection))
    }

    func close() {
        acceptor?.close()
        acceptor = nil
        for connection in connections.values { connection.stream.close() }
        if rendererStarted { renderer.stop() }
    }
}

final class MetricsConnection: StreamConnectionDelegate {
    let stream: StreamConnection
    private unowned let server: MetricsServer
    private var request: [UInt8] = []
    private var answered = false
    private var closed = false
    var deadline: TimerID?

    init(stream: StreamConnection, server: MetricsServer) {
        self.stream = stream
        self.server = server
        stream.delegate = self
    }

    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        guard !answered else { return }
        request += bytes
        let parsed = MetricsRequest.parse(request)
        switch parsed {
        case .incomplete:
            return
        case .metrics(let headOnly):
            answered = true
            stream.setReading(false)
            server.body { [weak self] body in
                // Closed meanwhile (the request deadline, or the relay stopping): nobody to tell.
                guard let self, !self.closed else { return }
                self.answer(MetricsRequest.response(status: 200, reason: "OK", contentType: MetricsRequest.exposition,
                                                    body: body, headOnly: headOnly))
            }
        case .refused(let status, let reason):
            answer(MetricsRequest.response(status: status, reason: reason, body: Array("\(reason)\n".utf8)))
        }
    }

    private func answer(_ bytes: [UInt8]) {
        answered = true
        stream.setReading(false)
        stream.write(bytes)
        stream.closeAfterFlush()
    }

    func streamConnectionDidDrain(_ connection: StreamConnection) {}

    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) {
        closed = true
        server.closed(self)
    }
}
