import COpenSSL

/// Signs JSON Web Tokens (RFC 7519) with an RSA private key through OpenSSL's EVP API:
/// RS256 (RSASSA-PKCS1-v1_5) for Google service accounts, PS256 (RSASSA-PSS, salt length
/// = digest length, RFC 7518 §3.5) for Microsoft client assertions. One owning class per
/// `EVP_PKEY`, freed in `deinit`; nothing else sees an OpaquePointer.
final class JWTSigner: @unchecked Sendable {
    enum Algorithm: String, Sendable {
        case rs256 = "RS256"
        case ps256 = "PS256"
    }

    struct KeyError: Error, Sendable, Equatable, CustomStringConvertible {
        var description: String
    }

    private let key: OpaquePointer

    /// `pem` holds a PKCS#8 or PKCS#1 RSA private key. The error never quotes the key.
    init(privateKeyPEM pem: String) throws(KeyError) {
        let bytes = Array(pem.utf8)
        let parsed: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        ERR_clear_error()
        guard let parsed else {
            throw KeyError(description: "not a PEM private key (unencrypted PKCS#8 \"BEGIN PRIVATE KEY\" or \"BEGIN RSA PRIVATE KEY\")")
        }
        guard EVP_PKEY_get_base_id(parsed) == EVP_PKEY_RSA else {
            EVP_PKEY_free(parsed)
            throw KeyError(description: "the private key is not an RSA key (RS256/PS256 need RSA)")
        }
        key = parsed
    }

    deinit { EVP_PKEY_free(key) }

    /// `base64url(header).base64url(claims).base64url(signature)`; the JSON is given
    /// already serialised so the caller decides the exact bytes.
    func sign(headerJSON: [UInt8], claimsJSON: [UInt8], algorithm: Algorithm) throws(KeyError) -> String {
        let input = Base64URL.encode(headerJSON) + "." + Base64URL.encode(claimsJSON)
        let signature = try signature(Array(input.utf8), algorithm: algorithm)
        return input + "." + Base64URL.encode(signature)
    }

    private func signature(_ data: [UInt8], algorithm: Algorithm) throws(KeyError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw KeyError(description: "out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        var ok = EVP_DigestSignInit(context, &keyContext, EVP_sha256(), nil, key) == 1
        if ok, algorithm == .ps256 {
            ok = EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1
                && EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, RSA_PSS_SALTLEN_DIGEST) == 1
        }
        var length = 0
        ok = ok && EVP_DigestSign(context, nil, &length, data, data.count) == 1
        var out = [UInt8](repeating: 0, count: length)
        ok = ok && EVP_DigestSign(context, &out, &length, data, data.count) == 1
        guard ok else {
            let reason = OpenSSLErrorQueue.drainedReason(fallback: "unknown OpenSSL error")
            throw KeyError(description: "signing failed: \(reason)")
        }
        return Array(out.prefix(length))
    }
}

/// What a client assertion says about its certificate (RFC 7515 §4.1.7-8).
public struct CertificateThumbprints: Sendable, Equatable {
    /// `x5t#S256`: base64url SHA-256 of the DER certificate.
    public var sha256: String
    /// `x5t`: base64url SHA-1 of the DER certificate (Entra ID's older name for it).
    public var sha1: String

    struct CertificateError: Error, Sendable, Equatable, CustomStringConvertible {
        var description: String
    }

    init(certificatePEM pem: String) throws(CertificateError) {
        let bytes = Array(pem.utf8)
        let der: [UInt8]? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else { return nil }
            defer { X509_free(certificate) }
            var pointer: UnsafeMutablePointer<UInt8>?
            let length = i2d_X509(certificate, &pointer)
            guard length > 0, let pointer else { return nil }
            defer { CRYPTO_free(pointer, #fileID, #line) }
            return Array(UnsafeBufferPointer(start: pointer, count: Int(length)))
        }
        ERR_clear_error()
        guard let der else { throw CertificateError(description: "not a PEM certificate (\"BEGIN CERTIFICATE\")") }
        sha256 = Base64URL.encode(Self.digest(der, EVP_sha256()))
        sha1 = Base64URL.encode(Self.digest(der, EVP_sha1()))
    }

    private static func digest(_ data: [UInt8], _ md: OpaquePointer?) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = EVP_Digest(data, data.count, &out, &length, md, nil)
        return Array(out.prefix(Int(length)))
    }
}

/// RFC 4648 §5 without padding, as JOSE wants it (RFC 7515 §2).
enum Base64URL {
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var text = UpstreamBase64.encodeString(bytes)
        text = String(text.compactMap { c -> Character? in
            switch c {
            case "+": "-"
            case "/": "_"
            case "=": nil
            default: c
            }
        })
        return text
    }
}
