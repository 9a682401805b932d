import Testing
@testable import SmarthostCore

@Suite("TLS connection in memory")
struct TLSConnectionTests {
    let certificates = TestCertificates.shared

    @Test func handshakeWithCAFileAndRoundTripBothWays() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        let outcome = link.handshake()
        #expect(outcome.clientError == nil)
        #expect(outcome.serverError == nil)

        let ehlo = Array("EHLO relay.example\r\n".utf8)
        #expect(try TLSTestLink.send(ehlo, from: link.client, to: link.server) == ehlo)
        let reply = Array("250-localhost\r\n250 8BITMIME\r\n".utf8)
        #expect(try TLSTestLink.send(reply, from: link.server, to: link.client) == reply)
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func largeMessageSpansManyRecords() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        #expect(link.handshake().succeeded)
        let message = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        #expect(try TLSTestLink.send(message, from: link.client, to: link.server) == message)
    }

    @Test func serverReceivesTheNameGivenAsSNI() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        #expect(link.handshake().succeeded)
        #expect(link.server.requestedServerName == "localhost")
        #expect(link.client.serverName == "localhost")
    }

    @Test func ipLiteralVerifiesAgainstTheCertificateAddressWithoutSNI() throws {
        for address in ["127.0.0.1", "::1"] {
            let link = try TLSTestLink(caFile: certificates.caCertificate, serverName: address)
            #expect(link.handshake().succeeded, "\(address)")
            // RFC 6066 §3: literal addresses are not sent as SNI.
            #expect(link.server.requestedServerName == nil)
        }
    }

    @Test func reportsVersionCipherAndPeerForLogs() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        #expect(link.client.negotiatedVersion == nil)
        #expect(link.handshake().succeeded)
        #expect(link.client.negotiatedVersion == "TLSv1.3")
        #expect(link.client.cipher?.hasPrefix("TLS_") == true)
        #expect(link.client.peerCertificateSubject == "/CN=localhost")
        #expect(link.server.peerCertificateSubject == nil)
    }

    @Test func tls12IsStillNegotiated() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate, serverVersions: .tls1_2 ... .tls1_2)
        #expect(link.handshake().succeeded)
        #expect(link.client.negotiatedVersion == "TLSv1.2")
        #expect(link.client.cipher?.hasPrefix("ECDHE-ECDSA-") == true)
    }

    @Test func partialRecordsYieldNothingUntilComplete() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        #expect(link.handshake().succeeded)
        try link.client.write(plaintext: Array("QUIT\r\n".utf8))
        let records = link.client.drainCiphertext()
        link.server.feedCiphertext(Array(records.prefix(3)))
        #expect(try link.server.readPlaintext() == [])
        link.server.feedCiphertext(Array(records.dropFirst(3)))
        #expect(try link.server.readPlaintext() == Array("QUIT\r\n".utf8))
    }

    @Test func closeNotifyFromThePeerReadsAsClosed() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        #expect(link.handshake().succeeded)
        try link.client.write(plaintext: Array("QUIT\r\n".utf8))
        link.client.sendCloseNotify()
        link.server.feedCiphertext(link.client.drainCiphertext())
        // Data sent before close_notify is delivered first, then the close.
        #expect(try link.server.readPlaintext() == Array("QUIT\r\n".utf8))
        #expect(throws: TLSError.closed) { try link.server.readPlaintext() }
        // The close sticks: writing on a closed session is refused the same way.
        #expect(throws: TLSError.closed) { try link.server.write(plaintext: [1]) }
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func endOfInputWithoutCloseNotifyIsClosed() throws {
        let link = try TLSTestLink(caFile: certificates.caCertificate)
        #expect(link.handshake().succeeded)
        link.client.feedEndOfInput()
        #expect(throws: TLSError.closed) { try link.client.readPlaintext() }
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func endOfInputDuringHandshakeIsAHandshakeFailure() throws {
        let client = try TLSConnection(context: try .client(caFile: certificates.caCertificate),
                                       serverName: "localhost")
        #expect(try client.handshake() == .needMoreData)
        #expect(!client.drainCiphertext().isEmpty)  // the ClientHello
        client.feedEndOfInput()
        let error = #expect(throws: TLSError.self) { try client.handshake() }
        guard case .handshake(let reason) = error else {
            Issue.record("expected a handshake error, got \(String(describing: error))")
            return
        }
        #expect(reason == "unexpected eof while reading", "\(reason)")
        #expect(OpenSSLErrorQueue.isEmpty)
    }
}
