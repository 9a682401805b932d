import Logging

/// `/metrics` on the event loop: one short-lived connection per scrape, a bounded request,
/// a deadline, `Connection: close`. The body is made on the loop from atomics and a few
/// gauges set just before (`refresh`), so a scrape never waits for another thread.
final class MetricsServer {
    private let loop: EventLoop
    private let logger: Logger
    private let metrics: RelayMetrics
    private var acceptor: Acceptor?
    private var connections: [ObjectIdentifier: MetricsConnection] = [:]
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

    func body() -> [UInt8] {
        refresh()
        return metrics.exposition()
    }

    func closed(_ connection: MetricsConnection) {
        loop.cancel(connection.deadline)
        connections.removeValue(forKey: ObjectIdentifier(connection))
    }

    func close() {
        acceptor?.close()
        acceptor = nil
        for connection in connections.values { connection.stream.close() }
    }
}

final class MetricsConnection: StreamConnectionDelegate {
    let stream: StreamConnection
    private unowned let server: MetricsServer
    private var request: [UInt8] = []
    private var answered = false
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
            answer(MetricsRequest.response(status: 200, reason: "OK", contentType: MetricsRequest.exposition,
                                           body: server.body(), headOnly: headOnly))
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
        server.closed(self)
    }
}
