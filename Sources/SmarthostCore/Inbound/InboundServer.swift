import CShim
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
    /// Open connections per client address, for `max_connections_per_client`.
    private var perClient: [String: Int] = [:]
    /// Addresses refused for `max_connections_per_client` whose refusal is logged already:
    /// one line per burst, until one of the address's connections ends.
    private var refusedClients: Set<String> = []
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
        context.delegate = self
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
    }

    func stopListening(on address: SocketAddress) {
        for acceptor in acceptors where acceptor.socket.address.description == address.description {
            acceptor.close()
            logger.info("stopped listening", metadata: ["address": "\(address)"])
        }
        acceptors.removeAll { $0.socket.address.description == address.description }
    }

    func replaceContext(_ newContext: InboundContext) {
        newContext.delegate = self
        context = newContext
    }

    private func accept(fd: Int32, peer: SocketAddress) {
        guard !stopping else {
            Syscall.close(fd)
            return
        }
        // Before any refusal: a Unix-socket client's uid is read from the open socket.
        let client = ClientIdentity(fd: fd, peer: peer)
        if connections.count >= context.maxConnections {
            refuseOverLimit(fd: fd, client: client)
            return
        }
        // Per address, or per uid on the Unix socket.
        let key = client.description
        let cap = context.maxConnectionsPerClient
        if cap > 0, perClient[key, default: 0] >= cap {
            refuse(fd: fd, client: client, InboundSession.tooManyConnectionsFromClientReply(hostname: context.hostname),
                   log: refusedClients.insert(key).inserted)
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
        let session = InboundSession(configuration: context.sessionConfiguration(client: client))
        let connection = InboundConnection(serial: serial, stream: stream, session: session, context: context, client: client)
        connections[serial] = connection
        perClient[key, default: 0] += 1
        connection.start()
    }

    /// Over `max_connections`: a clear `421` rather than a silent hang in the backlog. The
    /// write is one short non-blocking send on a fresh socket, so it cannot block the loop.
    private func refuseOverLimit(fd: Int32, client: ClientIdentity) {
        refuse(fd: fd, client: client, InboundSession.tooManyConnectionsReply(hostname: context.hostname), log: true)
    }

    private func refuse(fd: Int32, client: ClientIdentity, _ reply: SMTPReply, log: Bool) {
        let bytes = reply.wireBytes
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, SHIM_MSG_NOSIGNAL) }
        Syscall.close(fd)
        rejectedCount += 1
        if log {
            RefusalLog.log(InboundRefusal(command: InboundRefusal.connect, reply: reply), client: client.description, to: logger)
        }
        context.metrics?.refused(code: reply.code)
    }

    func connectionClosed(_ connection: InboundConnection) {
        if connections.removeValue(forKey: connection.serial) != nil {
            let key = connection.client.description
            let count = perClient[key, default: 1] - 1
            perClient[key] = count > 0 ? count : nil
            refusedClients.remove(key)
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
