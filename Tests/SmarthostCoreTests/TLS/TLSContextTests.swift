import Testing
@testable import SmarthostCore

/// Loading the files a route or listener names; each error names the file.
@Suite("TLS context files")
struct TLSContextTests {
    let certificates = TestCertificates.shared

    func fileError(_ body: () throws(TLSError) -> TLSContext) -> (path: String, reason: String)? {
        do {
            _ = try body()
            Issue.record("expected a file error")
        } catch {
            if case .file(let path, let reason) = error { return (path, reason) }
            Issue.record("expected a file error, got \(error)")
        }
        return nil
    }

    @Test func loadsClientAndServerContexts() throws {
        #expect(try TLSContext.client().role == .client)
        #expect(try TLSContext.client(caFile: certificates.caCertificate).role == .client)
        let server = try TLSContext.server(certificateChainFile: certificates.localhostChain,
                                           privateKeyFile: certificates.localhost.key)
        #expect(server.role == .server)
    }

    @Test func missingCAFileNamesTheFile() throws {
        let missing = certificates.directory + "/missing.pem"
        let error = try #require(fileError { () throws(TLSError) in try .client(caFile: missing) })
        #expect(error.path == missing)
        #expect(error.reason.contains("No such file"), "\(error.reason)")
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func caFileWithoutCertificatesIsRefused() throws {
        // A key is a PEM file, but holds no certificate.
        let error = try #require(fileError { () throws(TLSError) in
            try .client(caFile: certificates.localhost.key)
        })
        #expect(error.path == certificates.localhost.key)
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func missingCertificateChainNamesTheFile() throws {
        let missing = certificates.directory + "/missing-chain.pem"
        let error = try #require(fileError { () throws(TLSError) in
            try .server(certificateChainFile: missing, privateKeyFile: certificates.localhost.key)
        })
        #expect(error.path == missing)
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func keyOfAnotherCertificateIsAMismatch() throws {
        let error = try #require(fileError { () throws(TLSError) in
            try .server(certificateChainFile: certificates.localhost.certificate,
                        privateKeyFile: certificates.wrongHost.key)
        })
        #expect(error.path == certificates.wrongHost.key)
        #expect(error.reason.contains("does not belong"), "\(error.reason)")
        #expect(error.reason.contains("key values mismatch"), "\(error.reason)")
        #expect(OpenSSLErrorQueue.isEmpty)
    }

    @Test func descriptionsNameTheStepAndTheFile() {
        let error = TLSError.file(path: "/etc/smarthost/ca.pem", reason: "No such file or directory")
        #expect(error.description == "cannot use TLS file /etc/smarthost/ca.pem: No such file or directory")
    }
}
