/// The control protocol between `smarthost queue …` and the running daemon, spoken over
/// `<spool>/control.sock`: one request line, one reply line, then the daemon closes.
///
///     request  = verb [SP argument] LF        (CRLF accepted; at most 256 octets)
///     verb     = "STATUS" / "FLUSH" / "RETRY" / "DELETE" / "UNQUARANTINE" / "RELOAD" / "ROUTES"
///                / "HOLD" / "RELEASE"
///                (case-insensitive)
///     reply    = code SP text LF
///     code     = "OK" / "BUSY" / "NOTFOUND" / "ERROR"
///
/// `BUSY` means "the message is being delivered or is changing state right now; ask
/// again in a moment" — the client retries it a few times. Like Postfix's `postqueue`
/// talking to the `pickup`/`qmgr` fifos, the protocol is a tiny line format so the
/// daemon side stays a plain state machine and an operator can speak it with `socat`.
public enum ControlRequest: Sendable, Equatable, CustomStringConvertible {
    /// One line of queue and delivery counts (`ControlStatus`).
    case status
    /// Make one deferred message, or every one (nil), due now.
    case flush(SpoolID?)
    /// A dead letter goes back to the queue, due now; a deferred message becomes due now.
    case retry(SpoolID)
    /// Remove a message (queued or dead letter) for good, unless it is being delivered.
    case delete(SpoolID)
    /// A quarantined message whose content checks out goes back to the queue, due now.
    case unquarantine(SpoolID)
    /// Re-read the configuration and answer whether it was applied (`systemctl reload`).
    case reload
    /// The routes marked down now (`ControlRouteDown` words), then those slowed down by
    /// throttling (`ControlRouteSlowed` words; older clients skip them).
    case routes
    /// Keep a queued message without attempting it, until `release`.
    case hold(SpoolID)
    case release(SpoolID)

    public static let maxLineLength = 256

    /// The wire form, without the line end.
    public var description: String {
        switch self {
        case .status: return "STATUS"
        case .flush(nil): return "FLUSH"
        case .flush(let id?): return "FLUSH \(id)"
        case .retry(let id): return "RETRY \(id)"
        case .delete(let id): return "DELETE \(id)"
        case .unquarantine(let id): return "UNQUARANTINE \(id)"
        case .reload: return "RELOAD"
        case .routes: return "ROUTES"
        case .hold(let id): return "HOLD \(id)"
        case .release(let id): return "RELEASE \(id)"
        }
    }

    public var line: [UInt8] { Array((description + "\n").utf8) }

    /// Parses one request line (without its line end). A malformed request is answered
    /// with `.error`, never trusted: the argument must be a well-formed spool id, so a
    /// request can never name a path.
    public static func parse(_ line: some Collection<UInt8>) -> Result<ControlRequest, ControlReply> {
        guard line.count <= maxLineLength else { return .failure(.error("request line too long")) }
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            return .failure(.error("request must be printable ASCII"))
        }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true)
        guard let verb = words.first?.uppercased() else { return .failure(.error("empty request")) }
        let arguments = words.dropFirst().map(String.init)
        guard let row = verbTable.first(where: { $0.verb == verb }) else {
            return .failure(.error("unknown request \(verb); expected STATUS, FLUSH, RETRY, DELETE, HOLD, RELEASE, UNQUARANTINE, RELOAD or ROUTES"))
        }
        return row.build(arguments)
    }

    /// One row per verb (after Postfix's `smtpd_cmd_table`): the argument rules live here.
    private struct VerbRow: Sendable {
        let verb: String
        let build: @Sendable ([String]) -> Result<ControlRequest, ControlReply>
    }

    private static let verbTable: [VerbRow] = [
        VerbRow(verb: "STATUS") { $0.isEmpty ? .success(.status) : .failure(.error("STATUS takes no argument")) },
        VerbRow(verb: "FLUSH") { arguments in
            if arguments.isEmpty { return .success(.flush(nil)) }
            return oneID("FLUSH", arguments).map { .flush($0) }
        },
        VerbRow(verb: "RETRY") { oneID("RETRY", $0).map { .retry($0) } },
        VerbRow(verb: "DELETE") { oneID("DELETE", $0).map { .delete($0) } },
        VerbRow(verb: "UNQUARANTINE") { oneID("UNQUARANTINE", $0).map { .unquarantine($0) } },
        VerbRow(verb: "HOLD") { oneID("HOLD", $0).map { .hold($0) } },
        VerbRow(verb: "RELEASE") { oneID("RELEASE", $0).map { .release($0) } },
        VerbRow(verb: "ROUTES") { $0.isEmpty ? .success(.routes) : .failure(.error("ROUTES takes no argument")) },
        VerbRow(verb: "RELOAD") { $0.isEmpty ? .success(.reload) : .failure(.error("RELOAD takes no argument")) },
    ]

    private static func oneID(_ verb: String, _ arguments: [String]) -> Result<SpoolID, ControlReply> {
        guard arguments.count == 1 else { return .failure(.error("\(verb) takes exactly one queue id")) }
        guard let id = SpoolID(arguments[0]) else { return .failure(.error("not a queue id: \(arguments[0])")) }
        return .success(id)
    }
}

/// The daemon's one-line answer.
/// An `Error` too, so a parse failure carries the reply that answers it.
public struct ControlReply: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case ok = "OK"
        case busy = "BUSY"
        case notFound = "NOTFOUND"
        case error = "ERROR"
    }

    public var code: Code
    public var text: String

    public init(_ code: Code, _ text: String) {
        self.code = code
        // One line, whatever the text (an upstream reply or an errno string) contains.
        self.text = ControlReply.singleLine(text)
    }

    public static func ok(_ text: String) -> ControlReply { ControlReply(.ok, text) }
    public static func busy(_ text: String) -> ControlReply { ControlReply(.busy, text) }
    public static func notFound(_ text: String) -> ControlReply { ControlReply(.notFound, text) }
    public static func error(_ text: String) -> ControlReply { ControlReply(.error, text) }

    public var description: String { text.isEmpty ? code.rawValue : "\(code.rawValue) \(text)" }

    public var line: [UInt8] { Array((description + "\n").utf8) }

    /// Parses a reply line (without its line end); nil when it is not one.
    public static func parse(_ line: some Collection<UInt8>) -> ControlReply? {
        let text = String(decoding: line, as: UTF8.self)
        let codeText = text.prefix { $0 != " " }
        guard let code = Code(rawValue: String(codeText)) else { return nil }
        let rest = text.dropFirst(codeText.count)
        return ControlReply(code, String(rest.drop { $0 == " " }))
    }

    /// Scalars, not Characters: "\r\n" is one Character and would slip past a check.
    static func singleLine(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            out.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
        }
        return String(out)
    }
}

/// What `STATUS` reports: the daemon fills it, `smarthost queue status` prints it, and it
/// travels as `key=value` words so older clients skip keys they do not know.
public struct ControlStatus: Sendable, Equatable, CustomStringConvertible {
    /// Messages the scheduler holds (waiting, deferred or being delivered).
    public var queued: Int
    /// Of those, messages that have failed at least one attempt.
    public var deferred: Int
    /// Of those, messages being delivered right now.
    public var inFlight: Int
    /// Dead letters in `failed/`.
    public var deadLetters: Int
    /// Since the daemon started.
    public var delivered: Int
    public var failed: Int
    public var routesDown: Int
    public var pid: Int32
    /// Held by an operator (`queue hold`).
    public var held = 0
    /// Waiting because their route's secret is missing.
    public var awaitingCredentials = 0
    /// Seconds since the oldest queued message was received.
    public var oldestSeconds = 0
    public var uptimeSeconds = 0
    /// Routes running slower than configured because their upstream throttled us.
    public var routesSlowed = 0
    /// While every message is refused for want of room (`limits.min_free_space`): the spool's
    /// free bytes and the floor; both 0 otherwise.
    public var refusingFreeBytes = 0
    public var refusingFloorBytes = 0

    /// The refusal these describe, nil while mail is accepted.
    public var refusingMail: SpoolFreeSpaceWatch.Refusal? {
        get {
            guard refusingFloorBytes > 0 else { return nil }
            return SpoolFreeSpaceWatch.Refusal(freeBytes: UInt64(max(refusingFreeBytes, 0)), floorBytes: UInt64(refusingFloorBytes))
        }
        set {
            refusingFreeBytes = newValue.map { Int(clamping: $0.freeBytes) } ?? 0
            refusingFloorBytes = newValue.map { Int(clamping: $0.floorBytes) } ?? 0
        }
    }

    public init(queued: Int = 0, deferred: Int = 0, inFlight: Int = 0, deadLetters: Int = 0,
                delivered: Int = 0, failed: Int = 0, routesDown: Int = 0, pid: Int32 = 0) {
        self.queued = queued
        self.deferred = deferred
        self.inFlight = inFlight
        self.deadLetters = deadLetters
        self.delivered = delivered
        self.failed = failed
        self.routesDown = routesDown
        self.pid = pid
    }

    private static var keys: [(String, WritableKeyPath<ControlStatus, Int>)] {
        [
        ("queued", \.queued), ("deferred", \.deferred), ("inflight", \.inFlight),
        ("dead", \.deadLetters), ("delivered", \.delivered), ("failed", \.failed),
        ("routes_down", \.routesDown), ("held", \.held), ("awaiting_credentials", \.awaitingCredentials), ("oldest", \.oldestSeconds), ("uptime", \.uptimeSeconds),
        ("routes_slowed", \.routesSlowed), ("refusing_free", \.refusingFreeBytes), ("refusing_floor", \.refusingFloorBytes),
        ]
    }

    public var description: String {
        (Self.keys.map { "\($0.0)=\(self[keyPath: $0.1])" } + ["pid=\(pid)"]).joined(separator: " ")
    }

    /// Reads the text of an `OK` reply to `STATUS`; unknown keys are skipped.
    public init?(parsing text: String) {
        self.init()
        var seen = 0
        for word in text.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = String(parts[0])
            if key == "pid", let value = Int32(parts[1]) {
                pid = value
                seen += 1
            } else if let path = Self.keys.first(where: { $0.0 == key })?.1, let value = Int(parts[1]) {
                self[keyPath: path] = value
                seen += 1
            }
        }
        if seen == 0 { return nil }
    }

    /// For systemd's `STATUS=` and the CLI.
    public var summary: String {
        "\(queued) queued (\(deferred) deferred, \(inFlight) in delivery), \(deadLetters) dead letters; "
            + "since start: \(delivered) delivered, \(failed) failed"
            + (routesDown > 0 ? "; \(routesDown) routes down" : "")
            + (routesSlowed > 0 ? "; \(routesSlowed) routes slowed by throttling" : "")
    }
}
