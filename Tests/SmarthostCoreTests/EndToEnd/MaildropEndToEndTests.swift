import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// Issue 19 item 3: `sendmail` never loses a message. With the relay stopped, silent (a unit
/// in a restart loop behind systemd's socket) or unable to load its configuration, sendmail
/// exits 0 at once with the message in the maildrop, and the relay delivers it once it runs
/// — with the uid of whoever dropped it, so `uid:` rules apply. Real relay, real upstream,
/// real files; other users by `setpriv`.
@Suite(.serialized) struct MaildropEndToEndTests {
    typealias Setup = SendmailEndToEndTests.Setup
    static let isRoot = geteuid() == 0

    static func maildrop(_ setup: Setup) -> String { Maildrop.directory(spool: setup.relay.spoolPath) }

    static func dropNames(_ setup: Setup) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: maildrop(setup))) ?? []).sorted()
    }

    /// Runs sendmail and returns the run and how long it took (bounded, not measured: the
    /// old code blocked 120 s).
    static func sendmail(_ setup: Setup, _ arguments: [String], body: String, asNobody: Bool = false,
                         environment: [String: String?] = [:]) throws -> (run: ToolRun, seconds: Double) {
        let started = Date()
        let run = asNobody
            ? try ToolRun.run("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", setup.sendmail] + arguments,
                              input: Data(body.utf8), environment: environment, directory: "/")
            : try ToolRun.run(setup.sendmail, arguments, input: Data(body.utf8), environment: environment)
        return (run, Date().timeIntervalSince(started))
    }

    /// What tmpfiles.d gives the installed spool: others may pass through its root.
    static func openSpoolRoot(_ setup: Setup) {
        chmod(setup.relay.spoolPath, 0o711)
    }

    @Test func relayStoppedTheMessageWaitsInTheMaildropAndGoesOutAtStart() throws {
        let setup = try Setup()
        setup.relay.stop()
        let quiet = try Self.sendmail(setup, ["-C", setup.submitConfig, "ops@example.com"], body: "Subject: one\n\nfirst\n")
        #expect(quiet.run.status == 0 && quiet.run.output.isEmpty, "silent, like any sendmail that queues: \(quiet.run.output)")
        #expect(quiet.seconds < 30)
        let verbose = try Self.sendmail(setup, ["-v", "-C", setup.submitConfig, "ops@example.com"], body: "Subject: two\n\nsecond\n")
        #expect(verbose.run.status == 0)
        #expect(verbose.run.output.hasPrefix("sendmail: queued locally as "), "\(verbose.run.output)")
        #expect(verbose.run.output.contains("Connection refused") && verbose.run.output.split(separator: "\n").count == 1)
        let names = Self.dropNames(setup)
        #expect(names.count == 2 && names.allSatisfy { $0.count == 32 }, "\(names)")
        #expect(setup.upstream.received().isEmpty)

        try setup.relay.start()
        let received = setup.upstream.waitForMessages(2)
        #expect(Set(received.compactMap { SendmailEndToEndTests.header("Subject", in: $0.content) }) == ["one", "two"])
        #expect(received.allSatisfy { $0.content.contains("(uid=0)\r\n\tby relay.test (smarthost)") }, "\(received.map(\.content))")
        #expect(eventually { Self.dropNames(setup).isEmpty })
        #expect(setup.relay.log.components(separatedBy: "picked up from the maildrop").count == 3, "\(setup.relay.log)")
        setup.relay.stop()
    }

    /// A relay that accepts the connection and never greets (systemd holds the socket while
    /// the unit fails to start; the old sendmail waited 120 s and exited 75), then a
    /// configuration that does not load: the message waits, and goes out once fixed.
    @Test func silentRelayAndABrokenConfigurationThenFixed() throws {
        let setup = try Setup()
        setup.relay.stop()
        let silent = try SilentListener()
        let run = try Self.sendmail(setup, ["-C", setup.submitConfig, "ops@example.com"], body: "Subject: held\n\nwaiting\n",
                                    environment: ["SMARTHOST_SUBMIT": "127.0.0.1:\(silent.port)"])
        #expect(run.run.status == 0, "\(run.run.output)")
        #expect(run.seconds < 60, "gave up on the silent relay after its reply timeout (\(run.seconds) s)")
        #expect(Self.dropNames(setup).count == 1)

        let good = try String(contentsOfFile: setup.relay.configPath, encoding: .utf8)
        try (good + "\nlimits: [this is not a mapping\n").write(toFile: setup.relay.configPath, atomically: true, encoding: .utf8)
        #expect(throws: RelayProcessError.self) { try setup.relay.start(timeout: 10) }
        #expect(setup.relay.waitForExit() != 0)
        let whileBroken = try Self.sendmail(setup, ["-C", setup.submitConfig, "ops@example.com"], body: "Subject: broken\n\nstill\n")
        #expect(whileBroken.run.status == 0)
        #expect(Self.dropNames(setup).count == 2)

        try good.write(toFile: setup.relay.configPath, atomically: true, encoding: .utf8)
        try setup.relay.start()
        let received = setup.upstream.waitForMessages(2)
        #expect(Set(received.compactMap { SendmailEndToEndTests.header("Subject", in: $0.content) }) == ["held", "broken"])
        #expect(eventually { Self.dropNames(setup).isEmpty })
        setup.relay.stop()
    }

    /// As `nobody`: the file is nobody's, group of the maildrop, 0640; another user can
    /// neither list the maildrop nor read the file; the relay delivers it as uid=65534.
    @Test(.enabled(if: isRoot, "needs root for setpriv"))
    func anUnprivilegedUsersDropIsUnreadableToOtherUsers() throws {
        let setup = try Setup()
        setup.relay.stop()
        Self.openSpoolRoot(setup)
        let run = try Self.sendmail(setup, ["-C", setup.submitConfig, "ops@example.com"], body: "Subject: private\n\nsecret words\n",
                                    asNobody: true)
        #expect(run.run.status == 0, "\(run.run.output)")
        let name = try #require(Self.dropNames(setup).first)
        let path = Self.maildrop(setup) + "/" + name
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_uid == 65534 && info.st_mode & 0o7777 == 0o640)
        var directory = stat()
        #expect(stat(Self.maildrop(setup), &directory) == 0 && info.st_gid == directory.st_gid, "the setgid directory's group")
        let otherUser = ["--reuid=daemon", "--regid=daemon", "--clear-groups"]
        let read = try ToolRun.run("/usr/bin/setpriv", otherUser + ["/bin/cat", path])
        #expect(read.status != 0 && read.output.contains("Permission denied") && !read.output.contains("secret words"), "\(read.output)")
        let list = try ToolRun.run("/usr/bin/setpriv", otherUser + ["/bin/ls", Self.maildrop(setup)])
        #expect(list.status != 0 && !list.output.contains(name), "\(list.output)")
        // Nor can nobody itself list the maildrop, or remove another user's drop.
        try setup.relay.start()
        let message = try setup.oneMessage()
        #expect(message.content.contains("(uid=65534)\r\n\tby relay.test"), "\(message.content)")
        #expect(SendmailEndToEndTests.body(of: message.content) == "secret words\r\n")
        setup.relay.stop()
    }

    /// `uid:` rules see sendmail: over the Unix socket (preferred to TCP when the config
    /// names one) and through the maildrop file's owner. On the old code sendmail used TCP,
    /// so the org refused nobody's mail (550, client 127.0.0.1).
    @Test(.enabled(if: isRoot, "needs root for setpriv"))
    func uidRulesMatchSendmailOverTheSocketAndThroughTheMaildrop() throws {
        let robots = try UpstreamProcess(mode: .plain)
        let socketDirectory = "/tmp/smarthost-md-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: socketDirectory) }
        chmod(socketDirectory, 0o755)
        let socketPath = socketDirectory + "/smtp.sock"
        let setup = try Setup(relayLimits: """
        orgs:
          robots:
            senders: ["*@robots.example"]
            clients: ["uid:65534"]
            host: 127.0.0.1
            port: \(robots.port)
            tls: none
        """, listen: ["127.0.0.1:0", "unix:\(socketPath)"])
        try setup.relay.waitForLog("listening address=unix:\(socketPath)")
        Self.openSpoolRoot(setup)
        let arguments = ["-C", setup.submitConfig, "-f", "bot@robots.example", "ops@example.com"]
        let live = try Self.sendmail(setup, arguments, body: "Subject: live\n\nover the socket\n", asNobody: true)
        #expect(live.run.status == 0, "\(live.run.output)")
        let atRobots = try #require(robots.waitForMessages(1).first)
        #expect(atRobots.content.contains("Subject: live") && atRobots.content.contains("(uid=65534)"))
        let asRoot = try Self.sendmail(setup, arguments, body: "Subject: root-live\n\nno\n")
        #expect(asRoot.run.status == 65, "\(asRoot.run.output)")
        #expect(asRoot.run.output.contains("client uid=0 may not send as org robots"), "\(asRoot.run.output)")

        setup.relay.stop()
        let dropped = try Self.sendmail(setup, arguments, body: "Subject: dropped\n\nlater\n", asNobody: true)
        #expect(dropped.run.status == 0, "\(dropped.run.output)")
        let rootDropped = try Self.sendmail(setup, arguments, body: "Subject: root-dropped\n\nno\n")
        #expect(rootDropped.run.status == 0)
        #expect(Self.dropNames(setup).count == 2)
        try setup.relay.start()
        #expect(robots.waitForMessages(2).compactMap { SendmailEndToEndTests.header("Subject", in: $0.content) } == ["live", "dropped"])
        #expect(eventually { setup.relay.log.contains("maildrop file refused") })
        let refused = setup.relay.log.split(separator: "\n").filter { $0.contains("maildrop file refused") }
        #expect(refused.count == 1 && refused[0].contains("client uid=0 may not send as org robots")
            && refused[0].contains("quarantined as maildrop-"), "\(refused)")
        #expect(Self.dropNames(setup).isEmpty)
        #expect(setup.upstream.received().isEmpty, "root's message never left as another org or the host level")
        setup.relay.stop()
    }

    /// Forged, truncated, oversized, a symlink to /etc/shadow, a FIFO and a stale `.tmp`
    /// beside one valid drop: one line each, the relay runs on, the valid one is delivered.
    @Test func badDropFilesAreRefusedAndTheValidOneBesideThemDelivered() throws {
        let setup = try Setup(relayLimits: "limits: { max_message_size: 10KiB }")
        setup.relay.stop()
        let directory = Self.maildrop(setup)
        let valid = MaildropMessage(uid: geteuid(), sender: "cron@host.example", recipients: ["ops@example.com"],
                                    heloName: "host.example", droppedAt: 1, content: Array("Subject: valid\r\n\r\nok\r\n".utf8))
        _ = try Maildrop.drop(valid, directory: directory)
        var bytes = MaildropFormat.encode(valid)
        bytes[bytes.count - 52] ^= 1
        FileManager.default.createFile(atPath: directory + "/forged", contents: Data(bytes))
        FileManager.default.createFile(atPath: directory + "/truncated", contents: Data(MaildropFormat.encode(valid).dropLast(7)))
        let bound = MaildropFormat.maxFileSize(maxContent: 10 * 1024)
        FileManager.default.createFile(atPath: directory + "/oversized", contents: Data(repeating: 0x41, count: bound + 1))
        #expect(symlink("/etc/shadow", directory + "/shadow") == 0)
        #expect(mkfifo(directory + "/fifo", 0o600) == 0)
        let stale = directory + "/.0123456789abcdef0123456789abcdef.tmp"
        FileManager.default.createFile(atPath: stale, contents: Data("half".utf8))
        var old = [timespec(tv_sec: time(nil) - 7200, tv_nsec: 0), timespec(tv_sec: time(nil) - 7200, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, stale, &old, AT_SYMLINK_NOFOLLOW) == 0)

        try setup.relay.start()
        let message = try setup.oneMessage()
        #expect(message.content.contains("Subject: valid"))
        #expect(eventually { Self.dropNames(setup).isEmpty }, "\(Self.dropNames(setup))")
        let refused = setup.relay.log.split(separator: "\n").filter { $0.contains("maildrop file refused") }
        #expect(refused.count == 6, "\(refused)")
        func line(_ file: String) -> String { refused.first { $0.contains("file=\(file) ") }.map(String.init) ?? "" }
        #expect(line("forged").contains("checksum mismatch") && line("forged").contains("quarantined as maildrop-forged"))
        #expect(line("truncated").contains("end marker") && line("truncated").contains("quarantined"))
        #expect(line("oversized").contains("oversized (\(bound + 1) bytes") && line("oversized").contains("action=removed"))
        #expect(line("shadow").contains("symbolic link") && line("shadow").contains("action=removed"))
        #expect(line("fifo").contains("not a regular file"))
        #expect(line(".0123456789abcdef0123456789abcdef.tmp").contains("stale and incomplete"))
        #expect(!setup.relay.log.contains("root:"), "nothing of /etc/shadow was read or logged")
        #expect(access("/etc/shadow", F_OK) == 0)
        let quarantine = try FileManager.default.contentsOfDirectory(atPath: setup.relay.spoolPath + "/quarantine").sorted()
        #expect(quarantine == ["maildrop-forged", "maildrop-forged.reason", "maildrop-truncated", "maildrop-truncated.reason"])
        #expect(setup.relay.isRunning)
        setup.relay.stop()
        #expect(setup.upstream.received().count == 1)
    }
}

/// A TCP listener that accepts into its backlog and never says a word: systemd's socket in
/// front of a unit that does not start.
final class SilentListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw RelayProcessError.didNotStart("silent listener: \(String(cString: strerror(errno)))") }
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }
}
