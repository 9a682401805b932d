import Foundation
import Testing

/// A real `smarthost serve` process for end-to-end tests: its own temp directory, spool and
/// config, listening on an ephemeral loopback port that it reports in its log.
final class RelayProcess: @unchecked Sendable {
    let directory: URL
    let spoolPath: String
    let configPath: String
    private(set) var port: UInt16 = 0
    private var process: Process?
    private let logLock = NSLock()
    private var logText = ""
    private var previousLogs = ""
    private var environment: [String: String]

    /// `configBody` is the YAML after the listen/spool lines (routes, limits…); `listen` the
    /// configured addresses (the first 127.0.0.1 one is the port `start` reports).
    init(configBody: String = RelayProcess.defaultRoutes, environment: [String: String] = [:],
         listen: [String] = ["127.0.0.1:0"]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        spoolPath = directory.appendingPathComponent("spool").path
        configPath = directory.appendingPathComponent("smarthost.yaml").path
        self.environment = environment
        try writeConfig(body: configBody, listen: listen)
    }

    /// Rewrites the config file in place (the next SIGHUP reads it); same layout as `init`.
    func writeConfig(body: String, listen: [String] = ["127.0.0.1:0"]) throws {
        let addresses = listen.map { "\"\($0)\"" }.joined(separator: ", ")
        let yaml = """
        hostname: relay.test
        listen: [\(addresses)]
        spool: \(spoolPath)
        \(body)
        """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    static let defaultRoutes = """
    default:
      host: 127.0.0.1
      port: 9
      tls: none
    host:
      use: default
    """

    static var binaryPath: String {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = testBinary.deletingLastPathComponent()
        // On Linux the test runner is `.build/<triple>/debug/smarthostPackageTests.xctest`.
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("smarthost").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/debug/smarthost"
    }

    var log: String { logLock.withLock { logText } }
    /// Everything every run printed, for checks such as "no secret was ever logged".
    var allLogs: String { logLock.withLock { previousLogs + logText } }

    /// Starts the daemon and waits until it reports its listening port.
    func start(timeout: TimeInterval = 20) throws {
        try spawn()
        try waitUntilListening(timeout: timeout)
    }

    /// Starts the daemon without waiting; `launcher` runs in front of it (for example
    /// `systemd-socket-activate -l …`), with the relay's command line appended.
    func spawn(launcher: [String] = []) throws {
        // A restart reports a new port: forget the previous run's lines.
        logLock.withLock { previousLogs += logText; logText = "" }
        let process = Process()
        let command = launcher + [Self.binaryPath, "serve", "--config", configPath]
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        // Whatever systemd gave the test runner is not for the relay under test.
        for key in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"] {
            env.removeValue(forKey: key)
        }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            let text = String(decoding: data, as: UTF8.self)
            self.logLock.withLock { self.logText += text }
        }
        try Self.withNoSignalsBlocked { try process.run() }
        self.process = process
    }

    /// The relay starts as systemd starts it, with no signal blocked: a child inherits the
    /// mask of the thread that spawns it, and the test runner's threads block nearly all
    /// signals, which hid relay threads that left SIGHUP/SIGTERM open (issue 19).
    static func withNoSignalsBlocked<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t(), saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return try body()
    }

    /// Waits until the daemon reports its listening port.
    func waitUntilListening(timeout: TimeInterval = 20) throws {
        guard let process else { throw RelayProcessError.didNotStart("not spawned") }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let port = Self.listeningPort(in: log) {
                self.port = port
                return
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw RelayProcessError.didNotStart(log)
    }

    static func listeningPort(in log: String) -> UInt16? {
        for line in log.split(separator: "\n") where line.contains("listening") {
            if let range = line.range(of: #"address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let match = line[range]
                if let colon = match.lastIndex(of: ":") { return UInt16(match[match.index(after: colon)...]) }
            }
        }
        return nil
    }

    var pid: Int32 { process?.processIdentifier ?? 0 }
    var isRunning: Bool { process?.isRunning ?? false }

    func signal(_ signal: Int32) {
        if let process, process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the process to exit; returns its status, or nil on timeout.
    @discardableResult
    func waitForExit(timeout: TimeInterval = 20) -> Int32? {
        guard let process else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func stop() {
        signal(SIGTERM)
        if waitForExit(timeout: 10) == nil {
            signal(SIGKILL)
            waitForExit(timeout: 5)
        }
    }

    func kill9() {
        signal(SIGKILL)
        waitForExit(timeout: 10)
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

enum RelayProcessError: Error, CustomStringConvertible {
    case didNotStart(String)

    var description: String {
        switch self {
        case .didNotStart(let log): return "smarthost did not start; its output:\n\(log)"
        }
    }
}

/// Runs a command-line tool to completion with a timeout, capturing its output.
struct ToolRun {
    var status: Int32
    var output: String

    /// `environment` entries are added to (or, with a nil value, removed from) the test's own.
    static func run(_ executable: String, _ arguments: [String], input: Data? = nil, timeout: TimeInterval = 60,
                    environment: [String: String?] = [:], directory: String? = nil) throws -> ToolRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (key, value) in environment { env[key] = value }
            process.environment = env
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let outPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = outPipe
        let inPipe = Pipe()
        process.standardInput = inPipe
        let collected = ToolOutput()
        outPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { collected.append(data) }
        }
        try process.run()
        // A tool that exits before reading its input (a usage error) closes the pipe: the
        // write must fail with EPIPE, not kill the whole test process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        if let input { try? inPipe.fileHandleForWriting.write(contentsOf: input) }
        try? inPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        outPipe.fileHandleForReading.readabilityHandler = nil
        if let rest = try? outPipe.fileHandleForReading.readToEnd() { collected.append(rest) }
        return ToolRun(status: process.terminationStatus, output: collected.text)
    }
}

final class ToolOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
