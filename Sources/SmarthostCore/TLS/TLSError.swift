// What can go wrong with TLS, as values a mail operator can act on.
//
// Every case carries enough to print one line that says which step failed
// and what to change: `smarthost test` and the delivery log print
// `description`, the failure policy switches over the cases.

/// Why a TLS operation failed.
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A certificate or key file given in the configuration could not be used.
    case file(path: String, reason: String)
    /// The peer's certificate chain or host name did not verify.
    case certificate(TLSCertificateFailure)
    /// The TLS handshake failed; `reason` is OpenSSL's reason string
    /// ("wrong version number", "tlsv1 alert protocol version", …).
    case handshake(reason: String)
    /// The server answered in clear text, e.g. `220 mail ESMTP`: implicit TLS
    /// was used against a port that expects plain SMTP or STARTTLS.
    case peerSpokePlaintext(firstLine: String)
    /// The established session failed: a corrupt record, an unexpected
    /// alert. `reason` is OpenSSL's.
    case protocolError(reason: String)
    /// The peer closed the TLS session (close_notify) or the connection.
    case closed
    /// OpenSSL failed outside of any peer's doing (allocation, bad state).
    case library(reason: String)

    public var description: String {
        switch self {
        case let .file(path, reason):
            return "cannot use TLS file \(path): \(reason)"
        case let .certificate(failure):
            return "certificate verification failed: \(failure.explanation)"
        case let .handshake(reason):
            return "TLS handshake failed: \(reason)\(Self.hint(forHandshakeReason: reason))"
        case let .peerSpokePlaintext(firstLine):
            return "the server speaks plain SMTP on this port: use tls: starttls "
                + "(or the implicit-TLS port, usually 465); it greeted with \"\(firstLine)\""
        case let .protocolError(reason):
            return "TLS session failed: \(reason)"
        case .closed:
            return "the TLS session was closed by the peer"
        case let .library(reason):
            return "TLS library failure: \(reason)"
        }
    }

    /// OpenSSL's reasons are precise but terse; the common ones get the
    /// sentence an operator needs next to them.
    static func hint(forHandshakeReason reason: String) -> String {
        let table: [(String, String)] = [
            ("wrong version number",
             " (the server did not answer with TLS: the port may expect STARTTLS or no TLS)"),
            ("unsupported protocol",
             " (no TLS version in common: the server offers only versions older than TLS 1.2)"),
            ("alert protocol version",
             " (no TLS version in common: the server refused TLS 1.2 and 1.3)"),
            ("alert handshake failure",
             " (the server refused the handshake: no cipher in common, or it wants a client certificate)"),
            ("unexpected eof",
             " (the server closed the connection during the TLS handshake)"),
            ("no shared cipher",
             " (no cipher in common with the peer)"),
        ]
        return table.first { reason.contains($0.0) }?.1 ?? ""
    }
}

/// A failed certificate check, classified so that logs and `smarthost test`
/// can say what to fix, with OpenSSL's own words kept for reference.
public struct TLSCertificateFailure: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case expired
        case notYetValid
        /// The peer's certificate (or its root) signs itself and is not trusted.
        case selfSigned
        /// "unable to get local issuer certificate": the issuing CA is neither
        /// in the trust store / ca_file nor sent by the server.
        case unknownIssuer
        /// The certificate is valid but names other hosts than the one we dialled.
        case hostNameMismatch
        case other
    }

    public let kind: Kind
    /// The X509_V_ERR_* code from `SSL_get_verify_result`.
    public let code: Int
    /// OpenSSL's text for `code` (`X509_verify_cert_error_string`).
    public let reason: String
    /// The host name or address we verified against, when there was one.
    public let expectedHost: String?
    /// The subject of the peer's leaf certificate, when it sent one.
    public let peerSubject: String?

    public init(kind: Kind, code: Int, reason: String, expectedHost: String?, peerSubject: String?) {
        self.kind = kind
        self.code = code
        self.reason = reason
        self.expectedHost = expectedHost
        self.peerSubject = peerSubject
    }

    /// One sentence: what is wrong, then what to do about it.
    public var explanation: String {
        let whose = peerSubject.map { "the certificate of \($0)" } ?? "the server's certificate"
        switch kind {
        case .expired:
            return "\(reason): \(whose) has expired; the upstream must renew it"
        case .notYetValid:
            return "\(reason): \(whose) is not valid yet; check this machine's clock"
        case .selfSigned:
            return "\(reason): \(whose) is self-signed and not trusted; "
                + "give it (or its CA) as ca_file for this route"
        case .unknownIssuer:
            return "\(reason): the CA that issued \(whose) is unknown; give the CA as ca_file "
                + "for this route, or the server must send its intermediate certificates"
        case .hostNameMismatch:
            let host = expectedHost.map { "'\($0)'" } ?? "the configured host"
            return "host name mismatch: \(whose) is not valid for \(host); "
                + "set host to a name the certificate lists"
        case .other:
            return reason
        }
    }
}
