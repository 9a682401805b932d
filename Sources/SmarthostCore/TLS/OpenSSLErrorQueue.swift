// OpenSSL reports failures on a per-thread error queue. Anything left there
// is misattributed to the next operation on this thread (SSL_get_error reads
// it), so every failing call site drains the queue into Swift values at once.
import COpenSSL

/// The calling thread's OpenSSL error queue.
enum OpenSSLErrorQueue {
    /// One entry of the queue.
    struct Entry: Equatable, Sendable {
        let code: UInt
        /// The reason alone, e.g. "wrong version number".
        let reason: String
        /// Extra text OpenSSL attached, e.g. the file name or the system call.
        let detail: String?

        var text: String { detail.map { "\(reason) (\($0))" } ?? reason }
    }

    /// Empties the queue before an SSL call, as `SSL_get_error(3)` requires.
    static func clear() {
        ERR_clear_error()
    }

    /// True when nothing is pending: what tests check after every failure.
    static var isEmpty: Bool {
        ERR_peek_error() == 0
    }

    /// Removes and returns every entry, oldest (the root cause) first.
    static func drain() -> [Entry] {
        var entries: [Entry] = []
        while true {
            var data: UnsafePointer<CChar>? = nil
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { return entries }
            let detail = (flags & ERR_TXT_STRING) != 0 ? data.map { String(cString: $0) } : nil
            entries.append(Entry(code: code, reason: reasonString(code), detail: detail?.nilIfEmpty))
        }
    }

    /// Drains the queue into one line; `fallback` when the queue was empty
    /// (a failure OpenSSL did not explain, e.g. an EOF from the peer).
    static func drainedReason(fallback: String) -> String {
        let entries = drain()
        if entries.isEmpty { return fallback }
        return entries.map(\.text).joined(separator: "; ")
    }

    private static func reasonString(_ code: UInt) -> String {
        if let reason = ERR_reason_error_string(code) {
            return String(cString: reason)
        }
        // No registered reason (e.g. an unknown library): the long form
        // "error:0A00010B:SSL routines::…" is still greppable.
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension TLSCertificateFailure.Kind {
    /// Groups OpenSSL's verification codes (x509_vfy.h) by what the
    /// operator has to do about them.
    init(verifyResult code: Int) {
        switch Int32(code) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            self = .expired
        case X509_V_ERR_CERT_NOT_YET_VALID:
            self = .notYetValid
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            self = .selfSigned
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            self = .unknownIssuer
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            self = .hostNameMismatch
        default:
            self = .other
        }
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
