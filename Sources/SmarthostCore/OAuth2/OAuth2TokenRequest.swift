/// The form a token endpoint is sent for each grant, built as a value so every field is
/// tested without a network. Signing happens here (client assertions and service-account
/// JWTs are made fresh for each request, valid for minutes).
struct OAuth2TokenRequest: Sendable {
    var url: String
    var fields: [(String, String)]

    enum BuildError: Error, Sendable, Equatable, CustomStringConvertible {
        case key(String)
        case refreshToken(String)

        var description: String {
            switch self {
            case .key(let reason): "cannot sign the token request: \(reason)"
            case .refreshToken(let reason): "cannot read the refresh token: \(reason)"
            }
        }
    }

    static let jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    static let clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    /// Lifetime of the assertions we sign: Google accepts at most an hour; short is safer.
    static let assertionLifetimeSeconds = 600

    /// - Parameters:
    ///   - now: Unix seconds, for `iat`/`nbf`/`exp`.
    ///   - refreshToken: the current refresh token, for `.refreshToken` (read by the caller).
    static func make(_ settings: OAuth2Settings, now: Int, refreshToken: String? = nil,
                     jwtID: String = randomID()) throws(BuildError) -> OAuth2TokenRequest {
        var fields: [(String, String)]
        switch settings.grant {
        case .clientSecret(let clientID, let secret):
            fields = [("grant_type", "client_credentials"), ("client_id", clientID),
                      ("client_secret", secret.revealed)]
        case .clientCertificate(let clientID, let thumbprints, let key):
            // Microsoft identity platform certificate credentials: aud = the token URL,
            // iss = sub = client id, x5t#S256 names the certificate.
            let header: [(String, String)] = [("alg", "PS256"), ("typ", "JWT"),
                                              ("x5t#S256", thumbprints.sha256), ("x5t", thumbprints.sha1)]
            let claims: [(String, JSONValue)] = [
                ("aud", .string(settings.tokenURL)), ("iss", .string(clientID)), ("sub", .string(clientID)),
                ("jti", .string(jwtID)), ("nbf", .number(now)), ("iat", .number(now)),
                ("exp", .number(now + assertionLifetimeSeconds)),
            ]
            let assertion = try sign(header: header, claims: claims, key: key, algorithm: .ps256)
            fields = [("grant_type", "client_credentials"), ("client_id", clientID),
                      ("client_assertion_type", clientAssertionType), ("client_assertion", assertion)]
        case .serviceAccount(let email, let keyID, let key, let subject):
            var header: [(String, String)] = [("alg", "RS256"), ("typ", "JWT")]
            if let keyID { header.append(("kid", keyID)) }
            var claims: [(String, JSONValue)] = [("iss", .string(email))]
            if let scope = settings.scope { claims.append(("scope", .string(scope))) }
            claims += [("aud", .string(settings.tokenURL)), ("sub", .string(subject)),
                       ("iat", .number(now)), ("exp", .number(now + assertionLifetimeSeconds))]
            let assertion = try sign(header: header, claims: claims, key: key, algorithm: .rs256)
            return OAuth2TokenRequest(url: settings.tokenURL,
                                      fields: [("grant_type", jwtBearerGrant), ("assertion", assertion)])
        case .refreshToken(let clientID, let secret, _):
            guard let refreshToken, !refreshToken.isEmpty else { throw .refreshToken("the refresh token file is empty") }
            fields = [("grant_type", "refresh_token"), ("client_id", clientID)]
            if let secret { fields.append(("client_secret", secret.revealed)) }
            fields.append(("refresh_token", refreshToken))
        }
        if let scope = settings.scope { fields.append(("scope", scope)) }
        return OAuth2TokenRequest(url: settings.tokenURL, fields: fields)
    }

    private static func sign(header: [(String, String)], claims: [(String, JSONValue)], key: Secret,
                             algorithm: JWTSigner.Algorithm) throws(BuildError) -> String {
        do {
            let signer = try JWTSigner(privateKeyPEM: key.revealed)
            let headerJSON = JSONValue.object(header.map { ($0.0, .string($0.1)) }).serialized
            return try signer.sign(headerJSON: headerJSON, claimsJSON: JSONValue.object(claims).serialized,
                                   algorithm: algorithm)
        } catch {
            throw .key(error.description)
        }
    }

    /// A `jti`: 128 random bits, hex.
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// Just enough JSON to write JWT headers and claims in a fixed key order.
enum JSONValue: Sendable {
    case string(String)
    case number(Int)
    case object([(String, JSONValue)])

    var serialized: [UInt8] { Array(text.utf8) }

    private var text: String {
        switch self {
        case .string(let value): return Self.quote(value)
        case .number(let value): return String(value)
        case .object(let members): return "{" + members.map { Self.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    /// RFC 8259 §7, the same literal `queue list --json` writes.
    private static func quote(_ value: String) -> String {
        QueueReport.string(value)
    }
}
