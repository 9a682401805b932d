// Two TLSConnections wired back to back in memory: what one drains, the
// other is fed. Stands in for the socket and the reactor in TLS tests.
@testable import SmarthostCore

struct TLSTestLink {
    let client: TLSConnection
    let server: TLSConnection

    /// A client trusting `caFile` (nil: the system store) dialling
    /// `serverName`, and a server presenting `identity`.
    init(caFile: String?, serverName: String = "localhost",
         identity: TestCertificates.Identity = TestCertificates.shared.localhost,
         serverVersions: ClosedRange<TLSVersion> = .tls1_2 ... .tls1_3) throws {
        let serverContext = try TLSContext(serverChain: identity.certificate, key: identity.key,
                                           versions: serverVersions)
        client = try TLSConnection(context: try TLSContext.client(caFile: caFile), serverName: serverName)
        server = try TLSConnection(context: serverContext)
    }

    struct Outcome {
        var client: Result<Void, TLSError>
        var server: Result<Void, TLSError>
    }

    /// Steps both handshakes, shuttling bytes, until both finish or fail.
    /// After a failure the other side still gets the alert and one more step,
    /// so that both error queues have been used and drained.
    func handshake() -> Outcome {
        var clientDone: Result<Void, TLSError>? = nil
        var serverDone: Result<Void, TLSError>? = nil
        for _ in 0..<20 {
            if clientDone == nil { clientDone = Self.step(client) }
            server.feedCiphertext(client.drainCiphertext())
            if serverDone == nil { serverDone = Self.step(server) }
            client.feedCiphertext(server.drainCiphertext())
            if let clientDone, let serverDone { return Outcome(client: clientDone, server: serverDone) }
            if clientDone.map({ !$0.isSuccess }) == true || serverDone.map({ !$0.isSuccess }) == true {
                if clientDone == nil { clientDone = Self.step(client) }
                server.feedCiphertext(client.drainCiphertext())
                if serverDone == nil { serverDone = Self.step(server) }
                return Outcome(client: clientDone ?? .success(()), server: serverDone ?? .success(()))
            }
        }
        Issue.record("handshake did not finish in 20 rounds")
        return Outcome(client: clientDone ?? .success(()), server: serverDone ?? .success(()))
    }

    /// One handshake step: nil while more data is needed.
    private static func step(_ connection: TLSConnection) -> Result<Void, TLSError>? {
        do {
            return try connection.handshake() == .complete ? .success(()) : nil
        } catch {
            return .failure(error)
        }
    }

    /// Sends `bytes` from one side and returns what the other side reads.
    static func send(_ bytes: [UInt8], from sender: TLSConnection, to receiver: TLSConnection) throws -> [UInt8] {
        try sender.write(plaintext: bytes)
        receiver.feedCiphertext(sender.drainCiphertext())
        let received = try receiver.readPlaintext()
        // TLS 1.3 tickets or key updates the receiver may owe the sender.
        sender.feedCiphertext(receiver.drainCiphertext())
        return received
    }
}

import Testing

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }

    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
