import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// Issue 15's tenancy through a real relay: real upstreams with TLS and AUTH per org, Python's
/// smtplib as the client over TCP (from 127.0.0.1 or 127.0.0.2) and over the Unix socket, run
/// as another user with `setpriv`. What is asserted is what arrived where, the replies on the
/// wire, the spool, and the log lines.
@Suite(.serialized) struct TenancyEndToEndTests {
    static let certificates = TestCertificates.shared

    /// One transaction; each reply is printed as `VERB code text`. `DATA`'s is the reply to the
    /// end of the message (smtplib got 354 first, or it would have printed that).
    static let clientScript = """
    import smtplib, socket, sys
    kind, target, source, sender, rcpt = sys.argv[1:6]
    class UnixSMTP(smtplib.SMTP):
        def _get_socket(self, host, port, timeout):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(target)
            return s
    if kind == 'unix':
        s = UnixSMTP(local_hostname='app.test', timeout=20)
        s.connect('localhost', 25)
    else:
        host, port = target.rsplit(':', 1)
        s = smtplib.SMTP(host, int(port), local_hostname='app.test', timeout=20,
                         source_address=(source, 0) if source != '-' else None)
    def show(verb, reply):
        print(verb, reply[0], reply[1].decode(errors='replace').replace('\\n', ' '), flush=True)
    s.ehlo()
    show('MAIL', s.mail(sender))
    show('RCPT', s.rcpt(rcpt))
    try:
        show('DATA', s.data(sys.stdin.buffer.read()))
    except smtplib.SMTPDataError as e:
        show('DATA', (e.smtp_code, e.smtp_error))
    s.quit()
    """

    enum Target {
        case tcp(port: UInt16, source: String?)
        case unix(path: String)
    }

    /// The replies of one transaction by verb (`MAIL`, `RCPT`, `DATA`).
    static func send(_ target: Target, from sender: String, to recipient: String = "ops@example.com",
                     org: String?, subject: String, asNobody: Bool = false) throws -> [String: String] {
        let header = org.map { "X-Smarthost-Org: \($0)\r\n" } ?? ""
        let message = "From: <\(sender)>\r\nSubject: \(subject)\r\n\(header)\r\nbody of \(subject)\r\n"
        var arguments: [String]
        switch target {
        case .tcp(let port, let source): arguments = ["tcp", "127.0.0.1:\(port)", source ?? "-"]
        case .unix(let path): arguments = ["unix", path, "-"]
        }
        arguments = ["-c", clientScript] + arguments + [sender, recipient]
        let run = asNobody
            ? try ToolRun.run("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3"] + arguments,
                              input: Data(message.utf8), directory: "/")
            : try ToolRun.run("/usr/bin/python3", arguments, input: Data(message.utf8))
        var replies: [String: String] = [:]
        for line in run.output.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            replies[String(line[..<space])] = String(line[line.index(after: space)...])
        }
        #expect(replies["DATA"] != nil, "the client did not finish: \(run.output)")
        return replies
    }

    /// acme has its own upstream and credentials; everything else goes to the host level's.
    static func config(acmeUpstream: UpstreamProcess, hostUpstream: UpstreamProcess, top: String = "",
                       acmeExtra: String = "", orgsExtra: String = "") -> String {
        """
        \(top)
        queue: { retry_min: 1s, retry_max: 2s, max_age: 1h }
        default:
          host: 127.0.0.1
          port: \(hostUpstream.port)
          tls: none
        host:
          use: default
        orgs:
          acme:
            use: custom
            senders: ["*@acme.example"]
        \(acmeExtra)
        \(DeliveryRoutesEndToEndTests.routeYAML(port: acmeUpstream.port, tls: "starttls", user: "alerts@acme.example",
                                                password: "acme-pass", from: nil, fromName: nil, indent: "    "))
        \(orgsExtra)
        """
    }

    static func acmeUpstream() throws -> UpstreamProcess {
        try UpstreamProcess(mode: .starttls, certificate: (certificates.localhost.certificate, certificates.localhost.key),
                            auth: "alerts@acme.example:acme-pass")
    }

    /// Nothing queued, and no file anywhere in the spool (tmp/ included, whose empty files the
    /// relay makes ahead) holds a byte of the refused messages.
    static func spoolHoldsNothing(_ relay: RelayProcess, refused subjects: [String]) throws -> Bool {
        guard try SpoolInspector(path: relay.spoolPath).messages().isEmpty else { return false }
        let files = FileManager.default.enumerator(atPath: relay.spoolPath)?.compactMap { $0 as? String } ?? []
        return !files.contains { name in
            let content = (try? Data(contentsOf: URL(fileURLWithPath: relay.spoolPath + "/" + name))) ?? Data()
            let text = String(decoding: content, as: UTF8.self)
            return subjects.contains { text.contains("Subject: " + $0) }
        }
    }

    static func logLines(_ relay: RelayProcess, containing parts: [String]) -> [Substring] {
        relay.log.split(separator: "\n").filter { line in parts.allSatisfy { line.contains($0) } }
    }

    @Test func headerClaimNeedsASenderOfThatOrgUnderTrustSenders() throws {
        let acme = try Self.acmeUpstream()
        let host = try UpstreamProcess(mode: .plain)
        let relay = try RelayProcess(configBody: Self.config(acmeUpstream: acme, hostUpstream: host, top: "org_header_trust: senders"))
        try relay.start()
        let tcp = Target.tcp(port: relay.port, source: nil)

        let good = try Self.send(tcp, from: "robot@acme.example", org: "acme", subject: "claim-with-sender")
        #expect(good["DATA"]?.hasPrefix("250 ") == true, "\(good)")
        let arrived = try #require(acme.waitForMessages(1).first)
        #expect(arrived.tls && arrived.authUser == "alerts@acme.example", "acme's credentials, at acme's upstream")
        #expect(arrived.content.contains("Subject: claim-with-sender"))

        // The forged claim: accepted up to DATA, refused at its end, once the header is read.
        let forged = try Self.send(tcp, from: "nobody@evil.example", org: "acme", subject: "forged-claim")
        #expect(forged["MAIL"]?.hasPrefix("250 ") == true && forged["RCPT"]?.hasPrefix("250 ") == true, "\(forged)")
        #expect(forged["DATA"] == "550 5.7.1 Error: the X-Smarthost-Org header names org acme, whose senders do not include this envelope sender")
        #expect(try Self.spoolHoldsNothing(relay, refused: ["forged-claim"]))
        #expect(eventually {
            Self.logLines(relay, containing: ["refused", "client=127.0.0.1", "command=END-OF-MESSAGE", "code=550",
                                              "enhanced=5.7.1", "from=<nobody@evil.example>", "org=acme"]).count == 1
        }, "\(relay.log)")

        // Without the header the same sender is host-level mail, relayed as before; it comes
        // after the refused one, so once it has arrived the refused one would have too.
        let plain = try Self.send(tcp, from: "nobody@evil.example", org: nil, subject: "no-claim")
        #expect(plain["DATA"]?.hasPrefix("250 ") == true)
        let atHost = host.waitForMessages(1)
        #expect(atHost.map(\.mailFrom) == ["nobody@evil.example"])
        #expect(try eventually { try SpoolInspector(path: relay.spoolPath).messages().isEmpty })
        #expect(acme.received().count == 1)
        #expect(!(acme.received() + host.received()).contains { $0.content.contains("forged-claim") })
        relay.stop()
    }

    @Test func trustAnyStillLetsTheHeaderChoose() throws {
        let acme = try Self.acmeUpstream()
        let host = try UpstreamProcess(mode: .plain)
        let relay = try RelayProcess(configBody: Self.config(acmeUpstream: acme, hostUpstream: host))
        try relay.start()
        let reply = try Self.send(.tcp(port: relay.port, source: nil), from: "nobody@evil.example", org: "acme", subject: "any-trust")
        #expect(reply["DATA"]?.hasPrefix("250 ") == true)
        #expect(acme.waitForMessages(1).first?.authUser == "alerts@acme.example")
        relay.stop()
    }

    @Test func clientAddressRulesByHeaderAndBySender() throws {
        let acme = try Self.acmeUpstream()
        let host = try UpstreamProcess(mode: .plain)
        let relay = try RelayProcess(configBody: Self.config(acmeUpstream: acme, hostUpstream: host,
                                                             acmeExtra: "    clients: [\"127.0.0.2\"]"))
        try relay.start()
        let fromListed = Target.tcp(port: relay.port, source: "127.0.0.2")
        let fromOther = Target.tcp(port: relay.port, source: "127.0.0.1")

        #expect(try Self.send(fromListed, from: "robot@acme.example", org: nil, subject: "listed-by-sender")["DATA"]?.hasPrefix("250 ") == true)
        #expect(try Self.send(fromListed, from: "x@platform.example", org: "acme", subject: "listed-by-header")["DATA"]?.hasPrefix("250 ") == true)
        let refusal = "550 5.7.1 Error: client 127.0.0.1 may not send as org acme"
        #expect(try Self.send(fromOther, from: "robot@acme.example", org: nil, subject: "other-by-sender")["DATA"] == refusal)
        #expect(try Self.send(fromOther, from: "x@platform.example", org: "acme", subject: "other-by-header")["DATA"] == refusal)
        // Host-level mail from the other address is not affected.
        #expect(try Self.send(fromOther, from: "x@platform.example", org: nil, subject: "other-host-level")["DATA"]?.hasPrefix("250 ") == true)

        let atAcme = acme.waitForMessages(2)
        #expect(Set(atAcme.compactMap { Self.subject($0.content) }) == ["listed-by-sender", "listed-by-header"])
        #expect(atAcme.allSatisfy { $0.authUser == "alerts@acme.example" })
        #expect(atAcme.allSatisfy { $0.content.contains("([127.0.0.2])") }, "Received: names the listed client")
        #expect(host.waitForMessages(1).compactMap { Self.subject($0.content) } == ["other-host-level"])
        #expect(try eventually { try Self.spoolHoldsNothing(relay, refused: ["other-by-sender", "other-by-header"]) })
        #expect(acme.received().count == 2)
        #expect(eventually { Self.logLines(relay, containing: ["refused", "client=127.0.0.1", "code=550", "org=acme"]).count == 2 })
        relay.stop()
    }

    @Test func uidRulesOverTheUnixSocket() throws {
        let acme = try Self.acmeUpstream()
        let host = try UpstreamProcess(mode: .plain)
        // A directory `nobody` can search, as /run/smarthost would be.
        let socketDirectory = "/tmp/smarthost-sock-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: socketDirectory) }
        chmod(socketDirectory, 0o755)
        let socketPath = socketDirectory + "/smtp.sock"
        // access.allow admits no client of TCP here: the Unix socket is not subject to it.
        let relay = try RelayProcess(
            configBody: Self.config(acmeUpstream: acme, hostUpstream: host, top: "access: { allow: [\"192.0.2.0/24\"] }",
                                    acmeExtra: "    clients: [\"user:nobody\", \"127.0.0.1\"]",
                                    orgsExtra: "  globex:\n    use: default\n    clients: [\"uid:0\"]"),
            listen: ["127.0.0.1:0", "unix:\(socketPath)"])
        try relay.start()
        #expect(eventually { relay.log.contains("listening address=unix:\(socketPath)") }, "\(relay.log)")
        var info = stat()
        #expect(lstat(socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o666, "any local user may connect")
        let unix = Target.unix(path: socketPath)

        let asNobody = try Self.send(unix, from: "x@platform.example", org: "acme", subject: "nobody-as-acme", asNobody: true)
        #expect(asNobody["DATA"]?.hasPrefix("250 ") == true, "\(asNobody)")
        let asRoot = try Self.send(unix, from: "robot@acme.example", org: nil, subject: "root-as-acme")
        #expect(asRoot["DATA"] == "550 5.7.1 Error: client uid=0 may not send as org acme")
        let nobodyAsGlobex = try Self.send(unix, from: "x@platform.example", org: "globex", subject: "nobody-as-globex", asNobody: true)
        #expect(nobodyAsGlobex["DATA"] == "550 5.7.1 Error: client uid=65534 may not send as org globex")
        // A uid without any rule still submits host-level mail.
        let hostLevel = try Self.send(unix, from: "x@platform.example", org: nil, subject: "nobody-host-level", asNobody: true)
        #expect(hostLevel["DATA"]?.hasPrefix("250 ") == true)
        // TCP from 127.0.0.1 is outside access.allow here: 554 at connect, as before.
        #expect(try RawSMTPClient(port: relay.port).readReply().hasPrefix("554 5.7.1"))

        let atAcme = try #require(acme.waitForMessages(1).first)
        #expect(atAcme.authUser == "alerts@acme.example" && atAcme.content.contains("Subject: nobody-as-acme"))
        #expect(atAcme.content.hasPrefix("Received: from app.test (uid=65534)\r\n"), "\(atAcme.content)")
        #expect(host.waitForMessages(1).compactMap { Self.subject($0.content) } == ["nobody-host-level"])
        #expect(try eventually { try Self.spoolHoldsNothing(relay, refused: ["root-as-acme", "nobody-as-globex"]) })
        #expect(acme.received().count == 1 && host.received().count == 1)
        #expect(eventually { !Self.logLines(relay, containing: ["accepted", "client=uid=65534", "org=acme"]).isEmpty })
        #expect(eventually { Self.logLines(relay, containing: ["refused", "client=uid=0", "org=acme", "from=<robot@acme.example>"]).count == 1 })
        #expect(eventually { Self.logLines(relay, containing: ["refused", "client=uid=65534", "org=globex"]).count == 1 })
        relay.stop()
        #expect(relay.waitForExit() == 0)
        #expect(access(socketPath, F_OK) != 0, "the relay removes the socket file it made")
    }

    @Test func unixSocketRefusesToReplaceAFileOrALiveSocket() throws {
        let directory = "/tmp/smarthost-sock-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/smtp.sock"
        try "not a socket".write(toFile: path, atomically: true, encoding: .utf8)
        let relay = try RelayProcess(listen: ["127.0.0.1:0", "unix:\(path)"])
        try relay.spawn()
        #expect(relay.waitForExit() == 1)
        #expect(relay.log.contains("not a socket"), "\(relay.log)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not a socket")

        // A live listener keeps its socket; a stale one (nobody accepting) is replaced.
        unlink(path)
        let live = try UnixSocket.listen(path: path)
        let second = try RelayProcess(listen: ["127.0.0.1:0", "unix:\(path)"])
        try second.spawn()
        #expect(second.waitForExit() == 1)
        #expect(second.log.contains("in use"), "\(second.log)")
        close(live)
        let third = try RelayProcess(listen: ["127.0.0.1:0", "unix:\(path)"])
        try third.start()
        #expect(eventually { third.log.contains("listening address=unix:\(path)") })
        third.stop()
    }

    /// The client here is this process (uid 0), not a child: the tool closes every fd but
    /// the socket before it execs the relay, including the one Foundation's `Process` watches
    /// for the relay's exit, and Foundation then waits for the relay on the thread that reaps
    /// every other child, so no tool run could finish until the relay stops.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: SystemdSocketActivationTests.tool)))
    func socketActivationPassesAUnixSocket() throws {
        let directory = "/tmp/smarthost-sock-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/smtp.sock"
        let host = try UpstreamProcess(mode: .plain)
        let body = "default:\n  host: 127.0.0.1\n  port: \(host.port)\n  tls: none\nhost:\n  use: default"
        let relay = try RelayProcess(configBody: body, listen: ["127.0.0.1:0"])
        try relay.spawn(launcher: [SystemdSocketActivationTests.tool, "-l", path])
        defer { relay.stop() }
        #expect(eventually(timeout: 10) { relay.log.contains("Listening on \(path)") }, "\(relay.log)")
        // The first client starts the relay, which adopts the AF_UNIX fd and knows our uid.
        let client = try UnixSMTPProbe(path: path)
        #expect(client.reply().hasPrefix("220 "))
        try relay.waitForLog("listening address=unix:\(path)")
        #expect(relay.log.contains("socket activation fds=1"))
        #expect(client.command("EHLO app.test").hasPrefix("250"))
        #expect(client.command("MAIL FROM:<x@platform.example>").hasPrefix("250 "))
        #expect(client.command("RCPT TO:<ops@example.com>").hasPrefix("250 "))
        #expect(client.command("DATA").hasPrefix("354 "))
        #expect(client.command("Subject: activated\r\n\r\nbody\r\n.").hasPrefix("250 "))
        let arrived = try #require(host.waitForMessages(1).first)
        #expect(arrived.content.hasPrefix("Received: from app.test (uid=0)\r\n"), "\(arrived.content)")
        #expect(eventually { relay.log.contains("client=uid=0") })
    }

    static func subject(_ content: String) -> String? {
        content.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
    }
}

/// A connection to a Unix socket that reads the greeting: what starts a socket-activated relay.
final class UnixSMTPProbe {
    let fd: Int32

    init(path: String) throws {
        fd = try UnixSocket.connect(path: path, timeoutMilliseconds: 20_000)
    }

    deinit { close(fd) }

    /// One whole reply (its last line is `NNN text`); "" if the connection ends first.
    func reply() -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let lines = text.split(separator: "\r\n")
            if text.hasSuffix("\r\n"), let last = lines.last, last.count >= 4,
               last[last.index(last.startIndex, offsetBy: 3)] == " " { return text }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return text }
            text += String(decoding: buffer[..<count], as: UTF8.self)
        }
    }

    func command(_ line: String) -> String {
        let bytes = Array((line + "\r\n").utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return reply()
    }
}

extension RelayProcess {
    func waitForLog(_ text: String, timeout: TimeInterval = 20) throws {
        guard eventually(timeout: timeout, { log.contains(text) }) else { throw RelayProcessError.didNotStart(log) }
    }
}
