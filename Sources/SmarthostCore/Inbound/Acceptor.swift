import Glibc
import Logging

/// Accepts connections on one listening socket. When the process runs out of descriptors
/// (EMFILE/ENFILE) accepting is paused instead of spun on — the readable listener would
/// wake the loop forever — and resumed when a session ends or after a short back-off.
final class Acceptor: IOHandler {
    let socket: ListeningSocket
    private let loop: EventLoop
    private let logger: Logger
    private let onAccept: (Int32, SocketAddress) -> Void
    private var registration: RegistrationID?
    private var resumeTimer: TimerID?
    private(set) var isPaused = false

    init(loop: EventLoop, socket: ListeningSocket, logger: Logger, onAccept: @escaping (Int32, SocketAddress) -> Void) throws(SystemError) {
        self.loop = loop
        self.socket = socket
        self.logger = logger
        self.onAccept = onAccept
        self.registration = try loop.register(fd: socket.fd, interest: .readable, handler: self)
    }

    func handle(_ events: IOEvents) {
        // Bounded so a connection storm cannot starve sessions already running.
        for _ in 0..<64 {
            switch socket.accept() {
            case .accepted(let fd, let peer):
                onAccept(fd, peer)
            case .wouldBlock:
                return
            case .transient:
                continue
            case .exhausted(let error):
                logger.warning("accept paused", metadata: ["listener": "\(socket.address)", "error": "\(error)"])
                pause(retryAfterMilliseconds: 250)
                return
            }
        }
    }

    func pause(retryAfterMilliseconds delay: Int64?) {
        guard !isPaused, let registration else { return }
        do {
            try loop.setInterest(registration, [])
        } catch {
            // The kernel is out of memory too: keep accepting rather than lose the listener.
            logger.error("accept pause failed", metadata: ["listener": "\(socket.address)", "error": "\(error)"])
            return
        }
        isPaused = true
        if let delay {
            resumeTimer = loop.schedule(afterMilliseconds: delay) { [weak self] in self?.resume() }
        }
    }

    func resume() {
        guard isPaused, let registration else { return }
        loop.cancel(resumeTimer)
        resumeTimer = nil
        do {
            try loop.setInterest(registration, .readable)
        } catch {
            logger.error("accept resume failed", metadata: ["listener": "\(socket.address)", "error": "\(error)"])
            resumeTimer = loop.schedule(afterMilliseconds: 250) { [weak self] in self?.resume() }
            return
        }
        isPaused = false
    }

    /// Stops listening for good (shutdown or a listener removed by reload).
    func close() {
        if let registration { loop.unregister(registration) }
        registration = nil
        loop.cancel(resumeTimer)
        socket.close()
    }
}
