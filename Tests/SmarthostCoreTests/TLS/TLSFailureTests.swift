import Testing
@testable import SmarthostCore

/// Every way an upstream's TLS can be wrong, and what we tell the operator.
@Suite("TLS failures")
struct TLSFailureTests {
    let certificates = TestCertificates.shared

    /// Handshakes and returns the client's certificate failure; checks that
    /// both sides failed and left their error queues empty.
    func certificateFailure(_ link: TLSTestLink) -> TLSCertificateFailure? {
        let outcome = link.handshake()
        #expect(outcome.serverError != nil, "the server should get our alert")
        #expect(OpenSSLErrorQueue.isEmpty)
        guard case .certificate(let failure) = outcome.clientError else {
            Issue.record("expected a certificate error, got \(String(describing: outcome.clientError))")
            return nil
        }
        return failure
    }

    @Test func wrongHostNameIsAHostNameMismatch() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate, identity: certificates.wrongHost)
        let failure = try #require(certificateFailure(link))
        #expect(failure.kind == .hostNameMismatch)
        #expect(failure.expectedHost == "localhost")
        #expect(TLSError.certificate(failure).description.contains("host name mismatch"))
        #expect(failure.explanation.contains("'localhost'"))
    }

    @Test func wrongIPAddressIsAHostNameMismatch() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate, serverName: "127.0.0.2")
        #expect(try #require(certificateFailure(link)).kind == .hostNameMismatch)
    }

    @Test func selfSignedWithoutCAFileIsSelfSigned() throws {
        let link = try TLSTestLink(caFile: nil, identity: certificates.selfSigned)
        let failure = try #require(certificateFailure(link))
        #expect(failure.kind == .selfSigned)
        #expect(failure.reason == "self-signed certificate")
        #expect(failure.explanation.contains("ca_file"))
    }

    @Test func selfSignedGivenAsCAFileIsTrusted() throws {
        let link = try TLSTestLink(caFile: certificates.selfSigned.certificate, identity: certificates.selfSigned)
        #expect(link.handshake().succeeded)
    }

    @Test func leafGivenAsCAFileIsTrusted() throws {
        // X509_V_FLAG_PARTIAL_CHAIN: a route may pin the server's own certificate.
        let link = try TLSTestLink(caFile: certificates.localhost.certificate)
        #expect(link.handshake().succeeded)
    }

    @Test func unknownCAWithoutCAFileIsUnknownIssuer() throws {
        let link = try TLSTestLink(caFile: nil)
        let failure = try #require(certificateFailure(link))
        #expect(failure.kind == .unknownIssuer)
        #expect(failure.reason == "unable to get local issuer certificate")
    }

    @Test func expiredIsExpired() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate, identity: certificates.expired)
        let failure = try #require(certificateFailure(link))
        #expect(failure.kind == .expired)
        #expect(failure.reason == "certificate has expired")
        #expect(failure.peerSubject == "/CN=localhost")
    }

    @Test func notYetValidIsNotYetValid() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate, identity: certificates.notYetValid)
        let failure = try #require(certificateFailure(link))
        #expect(failure.kind == .notYetValid)
        #expect(failure.explanation.contains("clock"))
    }

    @Test func serverLimitedToTLS11IsRefused() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate, serverVersions: .tls1_0 ... .tls1_1)
        let outcome = link.handshake()
        #expect(OpenSSLErrorQueue.isEmpty)
        guard case .handshake(let clientReason) = outcome.clientError,
              case .handshake(let serverReason) = outcome.serverError
        else {
            Issue.record("expected handshake errors on both sides, got \(outcome)")
            return
        }
        // The server found no version in common and said so with an alert.
        #expect(serverReason.contains("unsupported protocol"), "\(serverReason)")
        #expect(clientReason.contains("protocol version"), "\(clientReason)")
        #expect(TLSError.handshake(reason: clientReason).description.contains("no TLS version in common"))
    }

    @Test func plainSMTPGreetingIsPeerSpokePlaintext() throws {
        let client = try TLSConnection(context: try .client(caFile: certificates.caCertificate),
                                       serverName: "localhost")
        #expect(try client.handshake() == .needMoreData)
        _ = client.drainCiphertext()
        client.feedCiphertext(Array("220 mail ESMTP\r\n".utf8))
        #expect(throws: TLSError.peerSpokePlaintext(firstLine: "220 mail ESMTP")) { try client.handshake() }
        // The failure sticks: a retrying driver sees the same error.
        #expect(throws: TLSError.peerSpokePlaintext(firstLine: "220 mail ESMTP")) { try client.handshake() }
        let text = TLSError.peerSpokePlaintext(firstLine: "220 mail ESMTP").description
        #expect(text.hasPrefix("the server speaks plain SMTP on this port: use tls: starttls"))
        #expect(text.contains("220 mail ESMTP"))
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func garbageFromServerIsWrongVersionNumber() throws {
        let client = try TLSConnection(context: try .client(), serverName: "localhost")
        _ = try client.handshake()
        client.feedCiphertext(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))
        let error = #expect(throws: TLSError.self) { try client.handshake() }
        #expect(error == .handshake(reason: "wrong version number"))
        #expect(error?.description.contains("STARTTLS") == true)
        #expect(OpenSSLErrorQueue.isEmpty)
    }
}
