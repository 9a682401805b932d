// One SSL object over a pair of memory BIOs. The connection never touches a
// socket: the reactor feeds it what arrived and writes out what it drains.
// That keeps all I/O in one place (the event loop) and lets tests run two
// connections against each other in memory.
//
// A non-blocking driver, after every readable event:
//   tls.feedCiphertext(bytesFromSocket)
//   while handshaking: try tls.handshake()   (.needMoreData: wait for input)
//   afterwards:        let text = try tls.readPlaintext()
//   then always:       socket.write(tls.drainCiphertext())
// and to send: try tls.write(plaintext:), then socket.write(tls.drainCiphertext()).
// A client starts by calling handshake() once and writing out the ClientHello.
import COpenSSL
import COpenSSLShim
import Glibc

/// Progress of `TLSConnection.handshake()`.
public enum TLSHandshakeStatus: Equatable, Sendable {
    case complete
    /// Feed more ciphertext from the peer (after writing out what drains).
    case needMoreData
}

/// An owned `SSL` with its memory BIOs. Not thread-safe: it belongs to the
/// reactor thread, like its context.
public final class TLSConnection {
    public let context: TLSContext
    /// The name we dialled (client only): sent as SNI and verified.
    public let serverName: String?

    /// Internal, not private, only so the tests can play the peer's part (close_notify,
    /// end of input, the SNI a server saw: Tests/…/TLS/TLSConnection+Testing.swift).
    let ssl: OpaquePointer
    /// Network → SSL. Owned by `ssl` (SSL_set_bio); freed with it.
    let networkInput: OpaquePointer
    /// SSL → network. Owned by `ssl`.
    private let networkOutput: OpaquePointer
    private var state: State = .handshaking
    private var receivedAnyBytes = false
    /// Subject of the certificate OpenSSL rejected; a failed handshake keeps
    /// no peer certificate, yet the log should say whose it was.
    private var rejectedSubject: String?
    private var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)

    private enum State {
        case handshaking
        case established
        case closed
        case failed(TLSError)
    }

    /// A client connection to `serverName`, a host name or an IP literal.
    /// Names get SNI and RFC 6125 host-name checks; IP literals are checked
    /// against the certificate's IP addresses and send no SNI (RFC 6066 §3).
    public init(context: TLSContext, serverName: String) throws(TLSError) {
        precondition(context.role == .client, "a client connection needs a client context")
        let name = serverName.hasSuffix(".") ? String(serverName.dropLast()) : serverName
        self.context = context
        self.serverName = name
        (ssl, networkInput, networkOutput) = try Self.makeSSL(context)
        SSL_set_connect_state(ssl)
        try expectPeer(named: name)
        try observeVerification()
    }

    /// A server connection accepting with `context`'s certificate.
    public init(context: TLSContext) throws(TLSError) {
        precondition(context.role == .server, "a server connection needs a server context")
        self.context = context
        self.serverName = nil
        (ssl, networkInput, networkOutput) = try Self.makeSSL(context)
        SSL_set_accept_state(ssl)
    }

    deinit {
        SSL_free(ssl)
    }

    // MARK: Ciphertext side (the socket)

    /// Hands OpenSSL what arrived from the socket.
    public func feedCiphertext(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if !receivedAnyBytes {
            receivedAnyBytes = true
            if context.role == .client, case .handshaking = state, Self.looksLikeSMTPReply(bytes) {
                state = .failed(.peerSpokePlaintext(firstLine: Self.firstLine(of: bytes)))
                return
            }
        }
        let written = bytes.withUnsafeBytes { BIO_write(networkInput, $0.baseAddress, Int32($0.count)) }
        // A memory BIO only refuses when malloc does.
        precondition(written == bytes.count, "BIO_write to a memory BIO failed")
    }

    /// What must be written to the socket now; empty when nothing is pending.
    public func drainCiphertext() -> [UInt8] {
        let pending = Int(BIO_ctrl_pending(networkOutput))
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(networkOutput, $0.baseAddress, Int32(pending)) }
        precondition(read == pending, "BIO_read from a memory BIO returned less than pending")
        return bytes
    }

    // MARK: Handshake

    /// Advances the handshake with what has been fed so far.
    public func handshake() throws(TLSError) -> TLSHandshakeStatus {
        switch state {
        case .established: return .complete
        case .closed: throw .closed
        case .failed(let error): throw error
        case .handshaking: break
        }
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            state = .established
            return .complete
        }
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE {
            return .needMoreData
        }
        throw fail(handshakeFailure(code))
    }

    private var isHandshakeComplete: Bool {
        if case .established = state { return true }
        return false
    }

    // MARK: Plaintext side (the SMTP session)

    /// Encrypts `plaintext`; the records are then in `drainCiphertext()`.
    public func write(plaintext: [UInt8]) throws(TLSError) {
        try requireEstablished()
        var offset = 0
        while offset < plaintext.count {
            OpenSSLErrorQueue.clear()
            let written = plaintext.withUnsafeBytes { buffer in
                let chunk = min(buffer.count - offset, Int(Int32.max))
                return SSL_write(ssl, buffer.baseAddress! + offset, Int32(chunk))
            }
            guard written > 0 else {
                throw fail(sessionFailure(SSL_get_error(ssl, written)))
            }
            offset += Int(written)
        }
    }

    /// Everything that can be decrypted from what has been fed; empty when a
    /// record is still incomplete. Throws `.closed` once the peer has closed
    /// and everything before its close_notify has been returned.
    public func readPlaintext() throws(TLSError) -> [UInt8] {
        try requireEstablished()
        var plaintext: [UInt8] = []
        while true {
            OpenSSLErrorQueue.clear()
            let count = Int32(readBuffer.count)
            let read = readBuffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, count) }
            if read > 0 {
                plaintext += readBuffer[0..<Int(read)]
                continue
            }
            let code = SSL_get_error(ssl, read)
            if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE {
                return plaintext
            }
            let error = fail(sessionFailure(code))
            if plaintext.isEmpty { throw error }
            return plaintext  // the next call reports the close
        }
    }

    // MARK: For logs

    /// "TLSv1.3", once the handshake is complete.
    public var negotiatedVersion: String? {
        guard isHandshakeComplete, let version = SSL_get_version(ssl) else { return nil }
        return String(cString: version)
    }

    /// "TLS_AES_256_GCM_SHA384", once the handshake is complete.
    public var cipher: String? {
        guard isHandshakeComplete, let name = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)) else { return nil }
        return String(cString: name)
    }

    /// The subject of the peer's leaf certificate, "/CN=smtp.example.com",
    /// also after it failed verification (a certificate failure names it).
    var peerCertificateSubject: String? {
        Self.subject(of: SSL_get0_peer_certificate(ssl)) ?? rejectedSubject
    }
}

// MARK: - Private helpers

extension TLSConnection {
    private static func makeSSL(
        _ context: TLSContext
    ) throws(TLSError) -> (OpaquePointer, OpaquePointer, OpaquePointer) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "SSL_new failed"))
        }
        let input = BIO_new(BIO_s_mem()), output = BIO_new(BIO_s_mem())
        guard let input, let output else {
            BIO_free(input)
            BIO_free(output)
            SSL_free(ssl)
            throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "BIO_new failed"))
        }
        // An empty input BIO means "no data yet" (WANT_READ), not EOF: a closed socket
        // is the driver's to report, not OpenSSL's.
        _ = shim_BIO_set_mem_eof_return(input, -1)
        SSL_set_bio(ssl, input, output)
        return (ssl, input, output)
    }

    private func expectPeer(named name: String) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let ok: Bool
        if Self.isIPLiteral(name) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
        } else {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            ok = shim_SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1
        }
        guard ok else {
            throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "cannot verify against '\(name)'"))
        }
    }

    /// Index of our ex_data slot on SSL objects, allocated once per process.
    private static let ownerIndex: Int32 = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, nil, nil, nil, nil)

    /// Keeps OpenSSL's verdict (we return `ok` unchanged) and only notes the
    /// subject of the first certificate it rejects. The SSL points back to
    /// us unretained: it is freed in our deinit, so it never outlives us.
    private func observeVerification() throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard Self.ownerIndex >= 0, SSL_set_ex_data(ssl, Self.ownerIndex, Unmanaged.passUnretained(self).toOpaque()) == 1 else {
            throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "SSL_set_ex_data failed"))
        }
        SSL_set_verify(ssl, SSL_VERIFY_PEER) { ok, store in
            guard ok == 0, let store,
                  let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
                  let owner = SSL_get_ex_data(OpaquePointer(ssl), TLSConnection.ownerIndex)
            else { return ok }
            let connection = Unmanaged<TLSConnection>.fromOpaque(owner).takeUnretainedValue()
            if connection.rejectedSubject == nil {
                connection.rejectedSubject = TLSConnection.subject(of: X509_STORE_CTX_get0_cert(store))
            }
            return ok
        }
    }

    private func requireEstablished() throws(TLSError) {
        switch state {
        case .established: return
        case .closed: throw .closed
        case .failed(let error): throw error
        case .handshaking: preconditionFailure("TLS data before the handshake completed")
        }
    }

    /// Records the failure so later calls repeat it rather than touch an SSL
    /// that OpenSSL says must not be used again.
    private func fail(_ error: TLSError) -> TLSError {
        state = error == .closed ? .closed : .failed(error)
        return error
    }

    private func handshakeFailure(_ code: Int32) -> TLSError {
        let verifyResult = SSL_get_verify_result(ssl)
        if verifyResult != X509_V_OK {
            _ = OpenSSLErrorQueue.drain()  // "certificate verify failed": we say why.
            return .certificate(certificateFailure(Int(verifyResult)))
        }
        let fallback = code == SSL_ERROR_SSL ? "SSL error" : "the peer closed the connection"
        return .handshake(reason: OpenSSLErrorQueue.drainedReason(fallback: fallback))
    }

    private func sessionFailure(_ code: Int32) -> TLSError {
        let reason = OpenSSLErrorQueue.drainedReason(fallback: "")
        // A clean close_notify, or an EOF without one: either way the
        // session is over, and SMTP's own framing tells whether it mattered.
        if code == SSL_ERROR_ZERO_RETURN || code == SSL_ERROR_SYSCALL || reason.contains("unexpected eof") {
            return .closed
        }
        return .protocolError(reason: reason.isEmpty ? "SSL error \(code)" : reason)
    }

    private func certificateFailure(_ code: Int) -> TLSCertificateFailure {
        let reason = X509_verify_cert_error_string(code).map { String(cString: $0) } ?? "error \(code)"
        return TLSCertificateFailure(
            kind: .init(verifyResult: code), code: code, reason: reason,
            expectedHost: serverName, peerSubject: peerCertificateSubject)
    }

    private static func subject(of certificate: OpaquePointer?) -> String? {
        guard let certificate, let name = X509_get_subject_name(certificate) else { return nil }
        var buffer = [CChar](repeating: 0, count: 512)
        guard X509_NAME_oneline(name, &buffer, Int32(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func isIPLiteral(_ name: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, name, &address) == 1 || inet_pton(AF_INET6, name, &address) == 1
    }

    /// A TLS record starts with a content type byte 0x14–0x18; an SMTP reply
    /// starts with a digit (RFC 5321 §4.2). One byte tells them apart.
    static func looksLikeSMTPReply(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return false }
        return first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")
    }

    /// The peer's first line, printable ASCII only and bounded, for the log.
    static func firstLine(of bytes: [UInt8]) -> String {
        let line = bytes.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }.prefix(120)
        return String(decoding: line.map { (0x20...0x7e).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
