import Glibc

/// What a stream connection reports to its owner, on the loop thread.
public protocol StreamConnectionDelegate: AnyObject {
    /// Bytes read from the socket; only valid during the call.
    func streamConnection(_ connection: StreamConnection, didRead bytes: UnsafeRawBufferPointer)
    /// Everything queued has been written (useful for "close after the final reply").
    func streamConnectionDidDrain(_ connection: StreamConnection)
    /// The connection is gone (peer closed, error, or `close()`); the fd is already closed.
    func streamConnectionDidClose(_ connection: StreamConnection, error: SystemError?)
}

/// A non-blocking TCP stream on the reactor: reads into the loop's shared buffer, queues
/// writes in an output buffer and asks for `EPOLLOUT` only while that buffer is non-empty.
public final class StreamConnection: IOHandler {
    public let loop: EventLoop
    public let peer: SocketAddress
    public weak var delegate: StreamConnectionDelegate?

    private var fd: Int32
    private var registration: RegistrationID?
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var wantsRead = true
    /// Reading was paused but EPOLLIN is still registered: it is only taken out when the
    /// socket actually turns readable while paused. A client that waits for its reply
    /// (every one that does not pipeline past a message) then costs no epoll_ctl for the
    /// pause during a commit, nor for the resume after it.
    private var readPauseIsLazy = false
    private var closeWhenDrained = false
    public private(set) var isClosed = false

    public var pendingOutputCount: Int { output.count - outputOffset }

    /// What epoll is asked to report for this connection (nil once closed).
    var registeredInterest: IOEvents? {
        registration.flatMap { loop.interest(of: $0) }
    }

    /// Out of the epoll set after a hang-up while paused.
    var isParked: Bool {
        registration.map { loop.isParked($0) } ?? false
    }

    public init(loop: EventLoop, fd: Int32, peer: SocketAddress) throws(SystemError) {
        self.loop = loop
        self.fd = fd
        self.peer = peer
        self.registration = try loop.register(fd: fd, interest: .readable, handler: self)
    }

    /// Stops or resumes reading: back-pressure while a message commits or output piles up.
    public func setReading(_ enabled: Bool) {
        guard !isClosed else { return }
        // Once closing, reading stays off whatever the owner asks.
        let reading = enabled && !closeWhenDrained
        // Pausing leaves EPOLLIN registered until input actually comes (see
        // `readPauseIsLazy`); a pause for closing is not lazy.
        if wantsRead && !reading && !closeWhenDrained,
           let registration, loop.interest(of: registration)?.contains(.readable) == true {
            readPauseIsLazy = true
        }
        wantsRead = reading
        updateInterest()
    }

    public func write(_ bytes: some Collection<UInt8>) {
        guard !isClosed, !closeWhenDrained else { return }
        output.append(contentsOf: bytes)
        flush()
    }

    /// Closes once everything queued has been written (e.g. after `221` or `421`).
    public func closeAfterFlush() {
        guard !isClosed else { return }
        closeWhenDrained = true
        wantsRead = false
        readPauseIsLazy = false
        if pendingOutputCount == 0 { close() } else { updateInterest() }
    }

    public func close(error: SystemError? = nil) {
        guard !isClosed else { return }
        isClosed = true
        if let registration { loop.unregisterClosing(registration) }
        registration = nil
        Syscall.close(fd)
        fd = -1
        output = []
        delegate?.streamConnectionDidClose(self, error: error)
    }

    public func handle(_ events: IOEvents) {
        if events.contains(.writable) { flush() }
        if isClosed { return }
        if !wantsRead && events.contains(.hangup) && pendingOutputCount == 0, let registration {
            // Gone while we are not reading (e.g. reset right after its final dot): park
            // until reading resumes, which then sees the hang-up (see `EventLoop.park`).
            readPauseIsLazy = false
            do { try loop.park(registration) } catch { close(error: error) }
            return
        }
        if !wantsRead && readPauseIsLazy && events.contains(.readable) {
            // Input arrived while paused: now stop asking (level-triggered epoll would
            // report it on every wake-up).
            readPauseIsLazy = false
            updateInterest()
            return
        }
        if events.contains(.readable) || events.contains(.hangup) { readAvailable() }
    }

    private func readAvailable() {
        // Bounded per wake-up so one fast client cannot starve the others.
        for _ in 0..<16 {
            guard wantsRead, !isClosed else { return }
            let result: IOResult<Int>
            do {
                result = try Syscall.read(fd, into: loop.readBuffer)
            } catch {
                close(error: error)
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                close()
                return
            case .done(let count):
                delegate?.streamConnection(self, didRead: UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]))
                if count < loop.readBuffer.count { return }
            }
        }
    }

    public func flush() {
        while pendingOutputCount > 0, !isClosed {
            let offset = outputOffset
            let descriptor = fd
            let result = output.withUnsafeBytes { raw -> Result<IOResult<Int>, SystemError> in
                Result { () throws(SystemError) in
                    try Syscall.write(descriptor, UnsafeRawBufferPointer(rebasing: raw[offset...]))
                }
            }
            guard case .success(let outcome) = result else {
                if case .failure(let error) = result { close(error: error) }
                return
            }
            guard case .done(let written) = outcome else { break }
            outputOffset += written
        }
        if isClosed { return }
        if pendingOutputCount == 0 {
            output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
            outputOffset = 0
            if closeWhenDrained {
                close()
                return
            }
            delegate?.streamConnectionDidDrain(self)
        }
        updateInterest()
    }

    private func updateInterest() {
        guard let registration, !isClosed else { return }
        var interest: IOEvents = []
        if wantsRead {
            readPauseIsLazy = false
            interest.insert(.readable)
        } else if readPauseIsLazy {
            interest.insert(.readable)
        }
        if pendingOutputCount > 0 { interest.insert(.writable) }
        do { try loop.setInterest(registration, interest) } catch { close(error: error) }
    }
}
