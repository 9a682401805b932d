import Glibc

/// What the daemon does with a control request. Called on the loop thread; `reply` must be
/// called exactly once, on the loop thread (hop back with `EventLoop.execute` after work on
/// another thread). Calling it after the client went away is harmless.
public protocol ControlHandler: AnyObject {
    func handleControl(_ request: ControlRequest, reply: @escaping (ControlReply) -> Void)
}

/// Serves `<spool>/control.sock` on the event loop: accepts, reads one request line,
/// hands it to the `ControlHandler`, writes the one-line reply and closes.
///
/// Only root and the daemon's own user may talk to it (`SO_PEERCRED`), on top of the
/// socket's mode 0600 inside the 0700 spool directory.
public final class ControlServer: IOHandler {
    public let path: String
    public let loop: EventLoop
    private weak var handler: ControlHandler?
    private var fd: Int32
    private var registration: RegistrationID?
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    private let allowedUIDs: Set<uid_t>
    private let peerUID: (Int32) -> uid_t?

    /// Bounds on what a local client can make the daemon hold.
    public static let maxConnections = 32
    public static let requestTimeoutMilliseconds: Int64 = 5_000

    /// The conventional place: beside the queue it controls.
    public static func socketPath(spool: String) -> String {
        spool + "/control.sock"
    }

    public init(loop: EventLoop, path: String, handler: ControlHandler,
                allowedUIDs: Set<uid_t> = [0, getuid()],
                peerUID: @escaping (Int32) -> uid_t? = UnixSocket.peerUID) throws(SystemError) {
        self.loop = loop
        self.path = path
        self.handler = handler
        self.allowedUIDs = allowedUIDs
        self.peerUID = peerUID
        fd = try UnixSocket.listen(path: path)
        do throws(SystemError) {
            registration = try loop.register(fd: fd, interest: .readable, handler: self)
        } catch {
            Syscall.close(fd)
            _ = unlink(path)
            throw error
        }
    }

    public var connectionCount: Int { connections.count }

    /// Stops listening, drops open control connections and removes the socket file, so a
    /// CLI started afterwards sees that no daemon answers.
    public func close() {
        guard fd >= 0 else { return }
        if let registration { loop.unregister(registration) }
        registration = nil
        Syscall.close(fd)
        fd = -1
        _ = unlink(path)
        for connection in Array(connections.values) { connection.stream.close() }
        connections.removeAll()
    }

    public func handle(_ events: IOEvents) {
        for _ in 0..<16 {
            // EAGAIN, or a connection that died in the backlog.
            guard case .done(let (client, _))? = try? Syscall.accept(fd) else { return }
            admit(client)
        }
    }

    private func admit(_ client: Int32) {
        // A client we cannot identify is refused: the check is the access control.
        guard let uid = peerUID(client) else {
            refuse(client, .error("permission denied: cannot identify the client (SO_PEERCRED)"))
            return
        }
        guard allowedUIDs.contains(uid) else {
            refuse(client, .error("permission denied for uid \(uid)"))
            return
        }
        if connections.count >= Self.maxConnections {
            refuse(client, .busy("too many control connections"))
            return
        }
        guard let stream = try? StreamConnection(loop: loop, fd: client, peer: SocketAddress()) else {
            Syscall.close(client)
            return
        }
        let connection = ControlConnection(stream: stream, server: self)
        connections[ObjectIdentifier(connection)] = connection
        connection.start(timeout: Self.requestTimeoutMilliseconds)
    }

    /// A best-effort one-line answer on a socket we will not serve (it is non-blocking and
    /// the line is far below the socket buffer, so one send does it).
    private func refuse(_ client: Int32, _ reply: ControlReply) {
        let line = reply.line
        _ = line.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Syscall.close(client)
    }

    fileprivate func dispatch(_ request: ControlRequest, from connection: ControlConnection) {
        guard let handler else {
            connection.answer(.error("daemon is shutting down"))
            return
        }
        handler.handleControl(request) { [weak connection] reply in
            connection?.answer(reply)
        }
    }

    fileprivate func closed(_ connection: ControlConnection) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
    }
}

/// One client: collects bytes up to the first line end, asks the server to dispatch it,
/// writes the reply and closes after it is flushed.
private final class ControlConnection: StreamConnectionDelegate {
    let stream: StreamConnection
    private weak var server: ControlServer?
    private var buffer: [UInt8] = []
    private var timer: TimerID?
    private var answered = false
    private var dispatched = false

    init(stream: StreamConnection, server: ControlServer) {
        self.stream = stream
        self.server = server
    }

    func start(timeout: Int64) {
        stream.delegate = self
        timer = stream.loop.schedule(afterMilliseconds: timeout) { [weak self] in
            guard let self, !self.dispatched else { return }
            self.answer(.error("timed out waiting for a request line"))
        }
    }

    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer) {
        guard !dispatched else { return }
        buffer.append(contentsOf: bytes)
        guard let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.count > ControlRequest.maxLineLength { answer(.error("request line too long")) }
            return
        }
        var line = buffer[..<newline]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        dispatched = true
        stream.loop.cancel(timer)
        stream.setReading(false)
        switch ControlRequest.parse(line) {
        case .success(let request):
            server?.dispatch(request, from: self)
        case .failure(let reply):
            answer(reply)
        }
    }

    func answer(_ reply: ControlReply) {
        guard !answered else { return }
        answered = true
        stream.loop.cancel(timer)
        stream.write(reply.line)
        stream.closeAfterFlush()
    }

    func streamConnectionDidDrain(_ connection: StreamConnection) {}

    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?) {
        stream.loop.cancel(timer)
        // The reply closure only holds this object weakly: a late reply lands nowhere.
        answered = true
        server?.closed(self)
    }
}
