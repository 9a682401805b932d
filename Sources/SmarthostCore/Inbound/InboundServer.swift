import Glibc
import Logging

/// The listeners and every client connection. New connections get the configuration that
/// is current when they arrive; a reload never changes the rules under a session in flight.
final class InboundServer {
    private let loop: EventLoop
    private let logger: Logger
    private(set) var context: InboundContext
    private var acceptors: [Acceptor] = []
    private var connections: [UInt64: InboundConnection] = [:]
    /// Open connections by client and kind, and who may take a slot.
    private var admission: ConnectionAdmission
    private var nextSerial: UInt64 = 1
    private(set) var stopping = false
    /// Transactions refused or aborted and connections turned away, for `STATUS=`.
    var rejectedCount = 0
    var onIdleAfterStop: (() -> Void)?

    /// Every message the spool has durably accepted, whichever configuration generation its
    /// connection started under (the delivery scheduler). Owned here, not by a context, so a
    /// reload that swaps the context cannot drop it.
    var onAccepted: ((SpoolEnvelope, [UInt8]?) -> Void)?

    init(loop: EventLoop, context: InboundContext, logger: Logger) {
        self.loop = loop
        self.context = context
        self.logger = logger
        self.admission = ConnectionAdmission(maxConnections: 0, perClient: 0, unixReserve: 0)
        context.delegate = self
        updateAdmission()
    }

    /// The limits of the current context; the reserve only while a Unix socket listens.
    private func updateAdmission() {
        let limits = context.config.limits
        admission.maxConnections = limits.maxConnections
        admission.perClient = limits.connectionsPerClient
        admission.unixReserve = acceptors.contains { $0.socket.address.isUnix } ? limits.unixReserve : 0
    }

    var connectionCount: Int { connections.count }
    var listeningAddresses: [SocketAddress] { acceptors.map(\.socket.address) }

    func listen(on sockets: [ListeningSocket]) throws(SystemError) {
        for socket in sockets {
            let acceptor = try Acceptor(loop: loop, socket: socket, logger: logger) { [unowned self] fd, peer in
                self.accept(fd: fd, peer: peer)
            }
            acceptors.append(acceptor)
            logger.info("listening", metadata: ["address": "\(socket.address)"])
        }
        updateAdmission()
    }

    func stopListening(on address: SocketAddress) {
        for acceptor in acceptors where acceptor.socket.address.description == address.description {
            acceptor.close()
            logger.info("stopped listening", metadata: ["address": "\(address)"])
        }
        acceptors.removeAll { $0.socket.address.description == address.description }
        updateAdmission()
    }

    func replaceContext(_ newContext: InboundContext) {
        newContext.delegate = self
        context = newContext
        updateAdmission()
    }

    private func accept(fd: Int32, peer: SocketAddress) {
        guard !stopping else {
            Syscall.close(fd)
            return
        }
        // Before any refusal: a Unix-socket client's uid is read from the open socket.
        let client = ClientIdentity(fd: fd, peer: peer)
        // Per address, or per uid on the Unix socket.
        let key = client.description
        switch admission.decide(key: key, isUnix: client.isUnix) {
        case .admit:
            break
        case .poolFull:
            refuseOverLimit(fd: fd, client: client)
            return
        case .clientFull(let firstOfBurst):
            refuse(fd: fd, client: client, InboundSession.tooManyConnectionsFromClientReply(hostname: context.hostname),
                   log: firstOfBurst)
            return
        }
        let stream: StreamConnection
        do {
            stream = try StreamConnection(loop: loop, fd: fd, peer: peer)
        } catch {
            Syscall.close(fd)
            return
        }
        let serial = nextSerial
        nextSerial += 1
        let onThisHost = client.isOnThisHost(localAddress: ListeningSocket.localAddress(of: fd)?.ipBytes)
        let session = InboundSession(configuration: context.sessionConfiguration(client: client, onThisHost: onThisHost))
        let connection = InboundConnection(serial: serial, stream: stream, session: session, context: context, client: client)
        connections[serial] = connection
        admission.opened(key: key, isUnix: client.isUnix)
        connection.start()
    }

    /// Over `max_connections`: a clear `421` rather than a silent hang in the backlog. The
    /// write is one short non-blocking send on a fresh socket, so it cannot block the loop.
    private func refuseOverLimit(fd: Int32, client: ClientIdentity) {
        refuse(fd: fd, client: client, InboundSession.tooManyConnectionsReply(hostname: context.hostname), log: true)
    }

    private func refuse(fd: Int32, client: ClientIdentity, _ reply: SMTPReply, log: Bool) {
        let bytes = reply.wireBytes
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Syscall.close(fd)
        rejectedCount += 1
        if log {
            RefusalLog.log(InboundRefusal(command: InboundRefusal.connect, reply: reply), client: client.description, to: logger)
        }
        context.metrics?.refused(code: reply.code)
    }

    func connectionClosed(_ connection: InboundConnection) {
        if connections.removeValue(forKey: connection.serial) != nil {
            admission.closed(key: connection.client.description, isUnix: connection.client.isUnix)
        }
        for acceptor in acceptors where acceptor.isPaused { acceptor.resume() }
        if stopping, connections.isEmpty { onIdleAfterStop?() }
    }

    /// Graceful stop: no new connections; idle sessions are told `421 4.3.2` now, busy ones
    /// finish their transaction and are told at the next command boundary.
    func beginStop() {
        stopping = true
        for acceptor in acceptors { acceptor.close() }
        acceptors.removeAll()
        closeIdleConnections()
        if connections.isEmpty { onIdleAfterStop?() }
    }

    static func shutdownReply(_ hostname: String) -> SMTPReply {
        SMTPReply(421, "4.3.2", "\(hostname) Service shutting down, try again later")
    }

    func closeIdleConnections() {
        let reply = Self.shutdownReply(context.hostname)
        for connection in connections.values { connection.closeIfIdle(reply: reply) }
    }

    func forceCloseAll() {
        for connection in Array(connections.values) { connection.forceClose() }
    }
}

extension InboundServer: InboundContextDelegate {
    func messageAccepted(_ envelope: SpoolEnvelope, content: [UInt8]?) {
        onAccepted?(envelope, content)
    }

    func transactionRejected() {
        rejectedCount += 1
    }

    var isStopping: Bool { stopping }
}
