// One SSL_CTX: the settings shared by every connection that trusts one CA bundle
// (client) or from one listener (server). Delivery builds its client contexts on a
// worker thread when a configuration is made (ClientTLSContexts): reading a bundle
// is file I/O the event loop must not do. `check-config` only checks that a
// ca_file is readable; a bundle OpenSSL cannot use fails that route's attempts.
import COpenSSL
import COpenSSLShim

/// A TLS protocol version, for the floor and ceiling of a context.
public enum TLSVersion: Int, Sendable, Comparable, CustomStringConvertible {
    case tls1_0 = 0, tls1_1, tls1_2, tls1_3

    public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .tls1_0: return "TLSv1"
        case .tls1_1: return "TLSv1.1"
        case .tls1_2: return "TLSv1.2"
        case .tls1_3: return "TLSv1.3"
        }
    }

    var openSSLValue: Int32 {
        switch self {
        case .tls1_0: return TLS1_VERSION
        case .tls1_1: return TLS1_1_VERSION
        case .tls1_2: return TLS1_2_VERSION
        case .tls1_3: return TLS1_3_VERSION
        }
    }
}

/// An owned `SSL_CTX`. Not thread-safe: like every TLS object it belongs to
/// the one thread that runs the reactor.
public final class TLSContext {
    public enum Role: Sendable { case client, server }

    /// TLS 1.2 suites with forward secrecy and AEAD only (Mozilla's
    /// "intermediate" profile, which every large mail provider accepts).
    /// TLS 1.3 suites keep OpenSSL's defaults, which are all AEAD.
    static let defaultCipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
    ].joined(separator: ":")

    public let role: Role
    /// The `SSL_CTX *`, owned; only TLSConnection sees it.
    let pointer: OpaquePointer

    /// A client context that verifies the server's chain against `caFile`
    /// (a PEM bundle) when given, otherwise against the system trust store.
    /// The host name is checked per connection (`TLSConnection`).
    public static func client(caFile: String? = nil) throws(TLSError) -> TLSContext {
        try TLSContext(clientTrusting: caFile, versions: .tls1_2 ... .tls1_3)
    }

    /// A server context presenting the chain in `certificateChainFile`
    /// (leaf first, then intermediates, PEM) with the key in `privateKeyFile`.
    public static func server(certificateChainFile: String,
                              privateKeyFile: String) throws(TLSError) -> TLSContext {
        try TLSContext(serverChain: certificateChainFile, key: privateKeyFile,
                       versions: .tls1_2 ... .tls1_3)
    }

    /// Client context with explicit versions; below TLS 1.2 also lowers
    /// OpenSSL's security level, which otherwise forbids those versions.
    init(clientTrusting caFile: String?, versions: ClosedRange<TLSVersion>) throws(TLSError) {
        self.role = .client
        self.pointer = try Self.makeContext(method: TLS_client_method())
        try configure(versions: versions)
        try loadTrust(caFile: caFile)
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
    }

    /// Server context with explicit versions (tests use it to mimic old servers).
    init(serverChain: String, key: String, versions: ClosedRange<TLSVersion>) throws(TLSError) {
        self.role = .server
        self.pointer = try Self.makeContext(method: TLS_server_method())
        try configure(versions: versions)
        try loadIdentity(chainFile: serverChain, keyFile: key)
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    private static func makeContext(method: OpaquePointer?) throws(TLSError) -> OpaquePointer {
        OpenSSLErrorQueue.clear()
        guard let context = SSL_CTX_new(method) else {
            throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "SSL_CTX_new failed"))
        }
        return context
    }

    private func configure(versions: ClosedRange<TLSVersion>) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        if versions.lowerBound < .tls1_2 {
            // OpenSSL 3 permits TLS 1.0/1.1 only at security level 0.
            SSL_CTX_set_security_level(pointer, 0)
        }
        let ciphers = versions.lowerBound < .tls1_2 ? "DEFAULT@SECLEVEL=0" : Self.defaultCipherList
        guard shim_SSL_CTX_set_min_proto_version(pointer, versions.lowerBound.openSSLValue) == 1,
              shim_SSL_CTX_set_max_proto_version(pointer, versions.upperBound.openSSLValue) == 1,
              SSL_CTX_set_cipher_list(pointer, ciphers) == 1
        else {
            throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "cannot set TLS versions \(versions)"))
        }
    }

    private func loadTrust(caFile: String?) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let caFile else {
            guard SSL_CTX_set_default_verify_paths(pointer) == 1 else {
                throw .library(reason: OpenSSLErrorQueue.drainedReason(fallback: "cannot load the system trust store"))
            }
            return
        }
        guard SSL_CTX_load_verify_file(pointer, caFile) == 1 else {
            throw .file(path: caFile, reason: OpenSSLErrorQueue.drainedReason(fallback: "no certificate found"))
        }
        // A ca_file is the operator's explicit statement of trust for one
        // route: let it hold an intermediate or the server's own certificate,
        // not only a root.
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(pointer), UInt(X509_V_FLAG_PARTIAL_CHAIN))
    }

    private func loadIdentity(chainFile: String, keyFile: String) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate_chain_file(pointer, chainFile) == 1 else {
            throw .file(path: chainFile, reason: OpenSSLErrorQueue.drainedReason(fallback: "no certificate found"))
        }
        // Loading the key already compares it with the certificate; the
        // explicit check covers a chain file whose leaf has no key at all.
        guard SSL_CTX_use_PrivateKey_file(pointer, keyFile, SSL_FILETYPE_PEM) == 1,
              SSL_CTX_check_private_key(pointer) == 1
        else {
            let reason = OpenSSLErrorQueue.drainedReason(fallback: "no private key found")
            guard reason.contains("key values mismatch") else { throw .file(path: keyFile, reason: reason) }
            throw .file(path: keyFile, reason: "the key does not belong to the certificate in \(chainFile) (\(reason))")
        }
    }
}
