import Foundation
import Testing
@testable import SmarthostCore

/// `DeliveryProbe` against a real aiosmtpd upstream on loopback: the dialogue, the masking
/// and the step and hint of every failure an operator meets when setting up a route.
@Suite struct ProbeDeliveryTests {
    private let certificates = TestCertificates.shared

    @Test func starttlsWithAuthDeliversAndMasksThePassword() throws {
        let upstream = try ProbeUpstream(mode: "starttls", identity: certificates.localhost, auth: "robot:\(ProbeRoutes.password)")
        let route = ProbeRoutes.route(port: upstream.port, tls: .starttls, host: "localhost", username: "robot")
        var live: [String] = []
        let report = try DeliveryProbe.run(ProbeRoutes.request(route)) { live.append($0.description) }
        let lines = ProbeRoutes.lines(report)
        #expect(report.succeeded, "\(report.summary)\n\(lines.joined(separator: "\n"))")
        #expect(live == lines)
        #expect(lines.contains("C: STARTTLS"))
        #expect(lines.contains("C: AUTH PLAIN ********"))
        #expect(lines.contains { $0.hasPrefix("C: MAIL FROM:<alerts@acme.example>") })
        #expect(lines.filter { $0.hasPrefix("-- TLS established") }.count == 1, "\(lines)")
        #expect(lines.contains("C: QUIT"))
        #expect(report.dataReply?.code == 250)
        #expect(report.summary.hasPrefix("OK: localhost:\(upstream.port) (tls starttls)"))
        for line in lines + [report.summary] {
            #expect(!line.contains(ProbeRoutes.password))
            // Nor its base64 in an AUTH PLAIN payload.
            #expect(!line.contains("cm9ib3Q"))
        }
        let envelope = try #require(try upstream.envelopes().first)
        #expect(envelope["tls"] as? Bool == true)
        #expect(envelope["auth_user"] as? String == "robot")
        #expect(envelope["mail_from"] as? String == "alerts@acme.example")
        #expect(envelope["rcpt_tos"] as? [String] == ["ops@example.test"])
        #expect(upstream.authLog == "tls=1 mechanism=PLAIN\n")
        let message = try upstream.message(1)
        #expect(message.contains("Subject: smarthost test message"))
        #expect(message.contains("From: ACME Robots <alerts@acme.example>"))
        #expect(message.contains("Message-ID: <smarthost-test."))
        #expect(message.contains("Date: "))
    }

    @Test func implicitTLSDelivers() throws {
        let upstream = try ProbeUpstream(mode: "implicit", identity: certificates.localhost)
        let route = ProbeRoutes.route(port: upstream.port, tls: .implicit)
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        #expect(report.succeeded, "\(report.summary)")
        #expect(ProbeRoutes.lines(report).contains { $0.hasPrefix("-- TLS established") })
        #expect(try upstream.envelopes().first?["tls"] as? Bool == true)
    }

    @Test func implicitTLSWithAuthSendsCredentialsOnlyOverTLS() throws {
        let upstream = try ProbeUpstream(mode: "implicit", identity: certificates.localhost, auth: "robot:\(ProbeRoutes.password)")
        let route = ProbeRoutes.route(port: upstream.port, tls: .implicit, username: "robot")
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        #expect(report.succeeded, "\(report.summary)")
        #expect(upstream.authLog == "tls=1 mechanism=PLAIN\n")
        #expect(try upstream.envelopes().first?["auth_user"] as? String == "robot")
    }

    @Test func wrongHostNameIsACertificateFailure() throws {
        let upstream = try ProbeUpstream(mode: "starttls", identity: certificates.wrongHost)
        let route = ProbeRoutes.route(port: upstream.port, tls: .starttls, host: "localhost")
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        let failure = try #require(report.failure)
        #expect(failure.step == .certificate)
        #expect(failure.explanation.contains("host name"), "\(failure)")
        #expect(failure.explanation.contains("'localhost'"), "\(failure)")
        #expect(try upstream.envelopes().isEmpty)
    }

    @Test func selfSignedWithoutCAFileIsACertificateFailure() throws {
        let upstream = try ProbeUpstream(mode: "implicit", identity: certificates.selfSigned)
        let route = ProbeRoutes.route(port: upstream.port, tls: .implicit, caFile: nil)
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        let failure = try #require(report.failure)
        #expect(failure.step == .certificate)
        #expect(failure.explanation.contains("self-signed"), "\(failure)")
        #expect(failure.explanation.contains("ca_file"), "\(failure)")
    }

    @Test func expiredCertificateSaysExpired() throws {
        let upstream = try ProbeUpstream(mode: "starttls", identity: certificates.expired)
        let route = ProbeRoutes.route(port: upstream.port, tls: .starttls)
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        let failure = try #require(report.failure)
        #expect(failure.step == .certificate)
        #expect(failure.explanation.contains("expired"), "\(failure)")
        // Once, not "TLS handshake failed: TLS handshake failed: …".
        #expect(!failure.underlying.detail.contains("failed: TLS handshake failed"))
    }

    @Test func wrongPasswordIsAnAuthFailure() throws {
        let upstream = try ProbeUpstream(mode: "starttls", identity: certificates.localhost, auth: "robot:right-password")
        let route = ProbeRoutes.route(port: upstream.port, tls: .starttls, username: "robot")
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        let failure = try #require(report.failure)
        let lines = ProbeRoutes.lines(report)
        #expect(failure.step == .auth, "\(failure)")
        #expect(failure.explanation.contains("535"), "\(failure)")
        #expect(failure.hint?.contains("password") == true)
        // The session's QUIT really goes out after the refusal, and is answered.
        #expect(lines.suffix(2).first == "C: QUIT", "\(lines)")
        #expect(lines.last?.hasPrefix("S: 221") == true, "\(lines)")
        for text in lines + [report.summary, failure.description] {
            #expect(!text.contains(ProbeRoutes.password))
        }
    }

    @Test func refusedRecipientIsARecipientFailure() throws {
        let upstream = try ProbeUpstream(mode: "plain", extra: ["--reject-rcpt", "nobody@example.test=550 5.1.1 no such user"])
        let route = ProbeRoutes.route(port: upstream.port, tls: .none)
        let report = try DeliveryProbe.run(ProbeRoutes.request(route, to: "nobody@example.test"))
        let failure = try #require(report.failure)
        #expect(failure.step == .recipient)
        #expect(failure.explanation.contains("550 5.1.1 no such user"), "\(failure)")
        #expect(report.summary.hasPrefix("FAILED: 127.0.0.1:\(upstream.port) (tls none): failed at recipient (RCPT TO)"))
    }

    @Test func closedPortIsAConnectFailureWithTheHint() throws {
        let probe = try ListeningSocket.bind(SocketAddress(ip: "127.0.0.1", port: 0)!)
        let port = probe.address.port
        probe.close()
        let report = try DeliveryProbe.run(ProbeRoutes.request(ProbeRoutes.route(port: port, tls: .starttls)))
        let failure = try #require(report.failure)
        #expect(failure.step == .connect)
        #expect(failure.explanation.contains("Connection refused"), "\(failure)")
        #expect(failure.hint?.contains("blocked") == true)
    }

    @Test func implicitTLSAgainstAPlainPortSaysUseSTARTTLS() throws {
        let upstream = try ProbeUpstream(mode: "plain")
        let report = try DeliveryProbe.run(ProbeRoutes.request(ProbeRoutes.route(port: upstream.port, tls: .implicit)))
        let failure = try #require(report.failure)
        #expect(failure.step == .tlsHandshake)
        #expect(failure.hint?.contains("the server speaks plain SMTP on this port: use tls: starttls") == true, "\(failure)")
        #expect(failure.explanation.contains("220"), "\(failure)")
    }

    @Test func starttlsAgainstAnImplicitTLSPortSaysUseImplicit() throws {
        let upstream = try ProbeUpstream(mode: "implicit", identity: certificates.localhost)
        let route = ProbeRoutes.route(port: upstream.port, tls: .starttls, timeoutMs: 1_500)
        let started = MonotonicClock.nowMilliseconds()
        let report = try DeliveryProbe.run(ProbeRoutes.request(route))
        let failure = try #require(report.failure)
        #expect(failure.step == .greeting)
        #expect(failure.explanation.contains("no SMTP greeting"), "\(failure)")
        #expect(failure.hint == "the server expects TLS from the first byte (implicit TLS, usually port 465): use tls: implicit")
        #expect(MonotonicClock.nowMilliseconds() - started < 10_000)
    }
}
