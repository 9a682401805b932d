import Glibc

/// Why a TCP connection could not be made, in an operator's words.
public struct ConnectError: Error, Sendable, Equatable, CustomStringConvertible {
    public var address: String
    public var reason: String
    public var timedOut: Bool
    /// ECONNREFUSED: the host answered, but nothing accepts connections on the port.
    public var refused = false

    public var description: String {
        if timedOut {
            return "connect to \(address) timed out (a firewall may be blocking this port)"
        }
        return "connect to \(address) failed: \(reason)"
    }
}

/// A non-blocking connect on the loop: EINPROGRESS, wait for writability, read SO_ERROR.
/// The caller walks the address list; with no timeout here it keeps the time itself
/// (delivery's `UpstreamSession` does) and cancels.
final class TCPConnector: IOHandler {
    private let loop: EventLoop
    private let address: SocketAddress
    private var fd: Int32 = -1
    private var registration: RegistrationID?
    private var timer: TimerID?
    private var completion: ((Result<Int32, ConnectError>) -> Void)?

    private init(loop: EventLoop, address: SocketAddress, completion: @escaping (Result<Int32, ConnectError>) -> Void) {
        self.loop = loop
        self.address = address
        self.completion = completion
    }

    /// Connects to `address`; `completion` gets the connected fd (the caller owns it) or why not.
    @discardableResult
    static func connect(loop: EventLoop, to address: SocketAddress, timeoutMilliseconds: Int64? = nil,
                        _ completion: @escaping (Result<Int32, ConnectError>) -> Void) -> TCPConnector {
        let connector = TCPConnector(loop: loop, address: address, completion: completion)
        connector.start(timeoutMilliseconds: timeoutMilliseconds)
        return connector
    }

    private func start(timeoutMilliseconds: Int64?) {
        do {
            fd = try Syscall.socket(address.family)
        } catch {
            return finish(.failure(self.error(error.errno)))
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if result == 0 { return finish(.success(fd)) }
        guard errno == EINPROGRESS else { return finish(.failure(error(errno))) }
        do {
            registration = try loop.register(fd: fd, interest: .writable, handler: self)
        } catch {
            return finish(.failure(self.error(error.errno)))
        }
        guard let timeoutMilliseconds else { return }
        timer = loop.schedule(afterMilliseconds: timeoutMilliseconds) { [weak self] in
            guard let self else { return }
            self.finish(.failure(ConnectError(address: "\(self.address)", reason: "timed out", timedOut: true)))
        }
    }

    func handle(_ events: IOEvents) {
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
        finish(soError == 0 ? .success(fd) : .failure(error(soError)))
    }

    /// Abandons the attempt (the delivery was cancelled); no completion is called.
    func cancel() {
        completion = nil
        finish(.failure(ConnectError(address: "", reason: "cancelled", timedOut: false)))
    }

    private func error(_ code: Int32) -> ConnectError {
        var reason = String(cString: strerror(code))
        if code == ECONNREFUSED { reason += " (nothing listens on this port, or it is blocked)" }
        return ConnectError(address: "\(address)", reason: reason, timedOut: false, refused: code == ECONNREFUSED)
    }

    private func finish(_ result: Result<Int32, ConnectError>) {
        if let registration { loop.unregister(registration) }
        registration = nil
        loop.cancel(timer)
        timer = nil
        guard let completion else {
            if fd >= 0 { Syscall.close(fd) }
            fd = -1
            return
        }
        self.completion = nil
        if case .failure = result, fd >= 0 {
            Syscall.close(fd)
        }
        fd = -1
        completion(result)
    }
}
