// Two TLSConnections wired back to back in memory: what one drains, the
// other is fed. Stands in for the socket and the reactor in TLS tests.
import Testing
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

    /// How each side's handshake ended: nil error means complete.
    struct Outcome {
        var clientError: TLSError?
        var serverError: TLSError?
        var succeeded: Bool { clientError == nil && serverError == nil }
    }

    /// Steps both handshakes, shuttling bytes, until both have finished.
    /// A side that fails still sends its alert, and the other side gets to
    /// process it, so both error queues are exercised and must be drained.
    func handshake() -> Outcome {
        var client = Side(connection: self.client)
        var server = Side(connection: self.server)
        for _ in 0..<20 where !(client.finished && server.finished) {
            client.step()
            self.server.feedCiphertext(self.client.drainCiphertext())
            server.step()
            self.client.feedCiphertext(self.server.drainCiphertext())
            if client.error != nil || server.error != nil {
                // One more round lets the peer read the alert; stop after it.
                client.step()
                self.server.feedCiphertext(self.client.drainCiphertext())
                server.step()
                break
            }
        }
        #expect(client.finished || server.finished, "the handshake stalled")
        return Outcome(clientError: client.error, serverError: server.error)
    }

    private struct Side {
        let connection: TLSConnection
        var finished = false
        var error: TLSError?

        mutating func step() {
            guard !finished else { return }
            do {
                finished = try connection.handshake() == .complete
            } catch {
                self.error = error
                finished = true
            }
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
