import COpenSSL

/// SHA-256 through OpenSSL's one-shot EVP API, for values that must be told apart without
/// being kept: the delivery queue keys pooled connections by a digest of the route's secret
/// (`CredentialIdentity`), never by the secret.
enum SHA256Digest {
    static func digest(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes)
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = input.withUnsafeBytes { raw in
            EVP_Digest(raw.baseAddress, raw.count, &out, &length, EVP_sha256(), nil) == 1
        }
        // SHA-256 is built into every OpenSSL this links against; a failure is our bug.
        precondition(ok && length == 32, "EVP_Digest(SHA-256) failed")
        return Array(out.prefix(Int(length)))
    }
}
