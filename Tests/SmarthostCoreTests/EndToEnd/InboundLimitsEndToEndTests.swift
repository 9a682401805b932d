import Foundation
import Testing
@testable import SmarthostCore

/// Every limit of the listener, driven over a real socket against a real relay process, at
/// and past the limit; and the SMTP smuggling rules.
@Suite(.serialized) struct InboundLimitsEndToEndTests {
    static func relay(limits: String = "", access: String = "") throws -> RelayProcess {
        let body = """
        \(limits)
        \(access)
        \(RelayProcess.defaultRoutes)
        """
        let relay = try RelayProcess(configBody: body)
        try relay.start()
        return relay
    }

    /// The relay's one log line for a refusal: `refused client=… command=… code=… enhanced=…`.
    @discardableResult
    static func expectRefusalLogged(_ relay: RelayProcess, command: String, code: Int, enhanced: String,
                                    containing extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let wanted = ["<5>refused ", "client=127.0.0.1", "command=\(command) ", "code=\(code) ", "enhanced=\(enhanced) "] + extra
        func matching() -> [Substring] {
            relay.log.split(separator: "\n").filter { line in wanted.allSatisfy { line.contains($0) } }
        }
        let found = eventually(timeout: 10) { !matching().isEmpty }
        #expect(found, "no refusal line with \(wanted) in:\n\(relay.log)", sourceLocation: sourceLocation)
        #expect(matching().count <= 1, "more than one line for one refusal:\n\(relay.log)", sourceLocation: sourceLocation)
        return matching().first.map(String.init)
    }

    static func greeted(_ relay: RelayProcess) throws -> RawSMTPClient {
        let client = try RawSMTPClient(port: relay.port)
        #expect(client.readReply().hasPrefix("220 "))
        client.send("EHLO client.test\r\n")
        #expect(client.readReply().contains("250 "))
        return client
    }

    @Test func pipelinedGroupGetsRepliesInOrder() throws {
        let relay = try Self.relay()
        let client = try RawSMTPClient(port: relay.port)
        _ = client.readReply()
        client.send("EHLO client.test\r\nMAIL FROM:<a@acme.example>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        let replies = client.readReplies(5)
        #expect(replies[0].hasPrefix("250-"))
        #expect(replies[0].contains("PIPELINING"))
        #expect(replies[1].hasPrefix("250 2.1.0"))
        #expect(replies[2].hasPrefix("250 2.1.5"))
        #expect(replies[3].hasPrefix("250 2.1.5"))
        #expect(replies[4].hasPrefix("354 "))
        client.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        #expect(client.readReply().hasPrefix("250 2.0.0 Ok: queued as"))
        #expect(client.readReply().hasPrefix("221 2.0.0"))
        #expect(try SpoolInspector(path: relay.spoolPath).messages().count == 1)
        relay.stop()
    }

    @Test func bareLineFeedInDataIsRefusedOnceAndNothingIsSpooledWhenRejecting() throws {
        let relay = try Self.relay(limits: "limits:\n  bare_lf: reject")
        let client = try Self.greeted(relay)
        client.send("MAIL FROM:<a@acme.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        _ = client.readReplies(3)
        // The classic smuggling payload: "\n.\n" is not the end; a second message hides after it.
        client.send("Subject: x\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n")
        #expect(client.readReply().hasPrefix("550 5.5.2"))
        Self.expectRefusalLogged(relay, command: "END-OF-MESSAGE", code: 550, enhanced: "5.5.2",
                                 containing: ["from=<a@acme.example>", "to=<b@example.com>", "helo=client.test"])
        client.send("NOOP\r\n")
        #expect(client.readReply().hasPrefix("250 2.0.0"))
        #expect(try SpoolInspector(path: relay.spoolPath).messages().isEmpty)
        relay.stop()
    }

    @Test func protocolErrorsAndBareCRSmugglingAreEachOneLogLine() throws {
        let relay = try Self.relay()
        let client = try Self.greeted(relay)
        client.send("RCPT TO:<early@example.com>\r\n")
        #expect(client.readReply().hasPrefix("503 5.5.1"))
        Self.expectRefusalLogged(relay, command: "RCPT", code: 503, enhanced: "5.5.1", containing: ["to=<early@example.com>"])
        client.send("XYZZY\r\n")
        #expect(client.readReply().hasPrefix("500 5.5.2"))
        Self.expectRefusalLogged(relay, command: "UNKNOWN", code: 500, enhanced: "5.5.2")
        client.send("MAIL FROM:<a@acme.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        _ = client.readReplies(3)
        client.send("Subject: x\r\n\r\nfirst\r.\rMAIL FROM:<evil@example.com>\r\n.\r\n")
        #expect(client.readReply().hasPrefix("550 5.5.2"))
        Self.expectRefusalLogged(relay, command: "END-OF-MESSAGE", code: 550, enhanced: "5.5.2",
                                 containing: ["from=<a@acme.example>", "bare CR"])
        // Accepted mail leaves no refusal line.
        client.send("MAIL FROM:<a@acme.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        _ = client.readReplies(3)
        client.send("Subject: fine\r\n\r\nok\r\n.\r\n")
        #expect(client.readReply().hasPrefix("250 2.0.0"))
        #expect(relay.log.split(separator: "\n").filter { $0.hasPrefix("<5>refused ") }.count == 3, "\(relay.log)")
        relay.stop()
    }

    @Test func commandLineAtAndPastTheLimit() throws {
        let relay = try Self.relay()
        let client = try Self.greeted(relay)
        // 512 octets including CRLF is the longest command line allowed (RFC 5321 4.5.3.1.4).
        let atLimit = "NOOP " + String(repeating: "a", count: 512 - 5 - 2) + "\r\n"
        client.send(atLimit)
        #expect(client.readReply().hasPrefix("250 "))
        let pastLimit = "NOOP " + String(repeating: "a", count: 512 - 5 - 1) + "\r\n"
        client.send(pastLimit)
        #expect(client.readReply().hasPrefix("500 5.5.2"))
        Self.expectRefusalLogged(relay, command: "UNKNOWN", code: 500, enhanced: "5.5.2", containing: ["Line too long"])
        client.send("NOOP\r\n")
        #expect(client.readReply().hasPrefix("250 "))
        relay.stop()
    }

    @Test func recipientLimitAtAndPast() throws {
        let relay = try Self.relay(limits: "limits:\n  max_recipients: 3")
        let client = try Self.greeted(relay)
        client.send("MAIL FROM:<a@acme.example>\r\n")
        #expect(client.readReply().hasPrefix("250 "))
        for n in 1...3 {
            client.send("RCPT TO:<r\(n)@example.com>\r\n")
            #expect(client.readReply().hasPrefix("250 "))
        }
        client.send("RCPT TO:<r4@example.com>\r\n")
        #expect(client.readReply().hasPrefix("452 4.5.3"))
        Self.expectRefusalLogged(relay, command: "RCPT", code: 452, enhanced: "4.5.3",
                                 containing: ["from=<a@acme.example>", "to=<r4@example.com>"])
        relay.stop()
    }

    @Test func messageSizeLimitByParameterAndByContent() throws {
        let relay = try Self.relay(limits: "limits:\n  max_message_size: 10KiB")
        let client = try Self.greeted(relay)
        client.send("MAIL FROM:<a@acme.example> SIZE=10241\r\n")
        #expect(client.readReply().hasPrefix("552 5.3.4"))
        Self.expectRefusalLogged(relay, command: "MAIL", code: 552, enhanced: "5.3.4", containing: ["from=<a@acme.example>"])
        client.send("MAIL FROM:<a@acme.example> SIZE=10240\r\n")
        #expect(client.readReply().hasPrefix("250 "))
        client.send("RCPT TO:<b@example.com>\r\nDATA\r\n")
        _ = client.readReplies(2)
        let line = String(repeating: "x", count: 98) + "\r\n"
        client.send("Subject: big\r\n\r\n" + String(repeating: line, count: 200) + ".\r\n")
        #expect(client.readReply().hasPrefix("552 5.3.4"))
        Self.expectRefusalLogged(relay, command: "END-OF-MESSAGE", code: 552, enhanced: "5.3.4",
                                 containing: ["to=<b@example.com>"])
        #expect(try SpoolInspector(path: relay.spoolPath).messages().isEmpty)
        relay.stop()
    }

    @Test func connectionLimitGets421() throws {
        let relay = try Self.relay(limits: "limits:\n  max_connections: 2")
        let first = try RawSMTPClient(port: relay.port)
        #expect(first.readReply().hasPrefix("220 "))
        let second = try RawSMTPClient(port: relay.port)
        #expect(second.readReply().hasPrefix("220 "))
        let third = try RawSMTPClient(port: relay.port)
        #expect(third.readReply().hasPrefix("421 4.7.0"))
        Self.expectRefusalLogged(relay, command: "CONNECT", code: 421, enhanced: "4.7.0")
        #expect(third.isClosedByServer())
        first.send("QUIT\r\n")
        #expect(first.readReply().hasPrefix("221 "))
        #expect(first.isClosedByServer())
        // A slot is free again, as soon as the relay has seen the first connection's close
        // (until then another client still gets the 421).
        #expect(try eventually(timeout: 10) { try RawSMTPClient(port: relay.port).readReply().hasPrefix("220 ") })
        relay.stop()
    }

    @Test func idleTimeoutGets421AndClose() throws {
        let relay = try Self.relay(limits: "limits:\n  idle_timeout: 1s")
        let client = try RawSMTPClient(port: relay.port)
        #expect(client.readReply().hasPrefix("220 "))
        #expect(client.readReply().hasPrefix("421 4.4.2"))
        #expect(client.isClosedByServer())
        Self.expectRefusalLogged(relay, command: "TIMEOUT", code: 421, enhanced: "4.4.2")
        relay.stop()
    }

    @Test func clientOutsideAccessListGets554() throws {
        let relay = try Self.relay(access: "access:\n  allow: [\"10.0.0.0/8\"]")
        let client = try RawSMTPClient(port: relay.port)
        #expect(client.readReply().hasPrefix("554 5.7.1"))
        Self.expectRefusalLogged(relay, command: "CONNECT", code: 554, enhanced: "5.7.1")
        relay.stop()
    }

    @Test func belowFreeSpaceFloorGets452AndLeavesNothing() throws {
        let relay = try Self.relay(limits: "limits:\n  min_free_space: 1000000GiB")
        let client = try Self.greeted(relay)
        // Refused at MAIL, before the client sends anything big (RFC 1870 §6.1)...
        client.send("MAIL FROM:<a@acme.example> SIZE=100\r\n")
        #expect(client.readReply().hasPrefix("452 4.3.1"))
        Self.expectRefusalLogged(relay, command: "MAIL", code: 452, enhanced: "4.3.1", containing: ["from=<a@acme.example>"])
        client.send("MAIL FROM:<a@acme.example>\r\n")
        #expect(client.readReply().hasPrefix("452 4.3.1"))
        client.send("NOOP\r\n")
        #expect(client.readReply().hasPrefix("250"), "the session goes on: the relay's trouble is not the client's error")
        #expect(try SpoolInspector(path: relay.spoolPath).messages().isEmpty)
        let tmp = (try? FileManager.default.contentsOfDirectory(atPath: relay.spoolPath + "/tmp")) ?? []
        #expect(tmp.isEmpty)
        relay.stop()
    }
}

/// A client that pipelines commands and never reads the replies must not make the relay
/// buffer without bound, nor stall the others.
@Suite(.serialized) struct InboundBackPressureEndToEndTests {
    static func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func clientsThatNeverReadDoNotStarveOthersOrGrowMemory() throws {
        let relay = try InboundLimitsEndToEndTests.relay()
        let before = Self.residentKiB(relay.pid)
        let noops = Array(String(repeating: "NOOP\r\n", count: 10_000).utf8)
        let group = DispatchGroup()
        let deadline = Date().addingTimeInterval(4)
        for _ in 0..<10 {
            let flood = try RawSMTPClient(port: relay.port, timeoutSeconds: 1)
            DispatchQueue.global().async(group: group) {
                // Keeps sending (each send blocks at most 1 s once buffers are full), reads nothing.
                while Date() < deadline { flood.send(noops) }
                withExtendedLifetime(flood) {}
            }
        }
        let client = try InboundLimitsEndToEndTests.greeted(relay)
        client.send("MAIL FROM:<a@acme.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        #expect(client.readReplies(3).last?.hasPrefix("354") == true)
        client.send("Subject: still here\r\n\r\nbody\r\n.\r\n")
        #expect(client.readReply().hasPrefix("250 2.0.0 Ok: queued as"))
        group.wait()
        let after = Self.residentKiB(relay.pid)
        // Each flooding connection may hold about 64 KiB of unsent replies, not megabytes.
        #expect(after - before < 32 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
        relay.stop()
    }
}
