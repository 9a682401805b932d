/// A route's `oauth2:` block, resolved at load: files read and checked, keys parsed, the
/// token URL and scope given their provider defaults. Secrets stay `Secret`s, so printing
/// or dumping this value shows `********`.
public struct OAuth2Settings: Sendable, Equatable {
    public enum Provider: String, Sendable, Equatable, CaseIterable {
        case microsoft, google, generic
    }

    /// The SASL mechanism to offer the token with (what the server offers decides when it
    /// lacks this one).
    public enum Mechanism: String, Sendable, Equatable, CaseIterable {
        case xoauth2, oauthbearer
    }

    /// How a token is obtained.
    public enum Grant: Sendable, Equatable {
        /// Client credentials with a client secret (RFC 6749 §4.4, §2.3.1).
        case clientSecret(clientID: String, secret: Secret)
        /// Client credentials with a certificate: a signed client assertion (RFC 7523 §2.2),
        /// as Microsoft identity platform wants it.
        case clientCertificate(clientID: String, thumbprints: CertificateThumbprints, key: Secret)
        /// JWT bearer grant (RFC 7523 §2.1) with a Google service account; `subject` is the
        /// mailbox it acts for (domain-wide delegation).
        case serviceAccount(email: String, keyID: String?, key: Secret, subject: String)
        /// Refresh token grant (RFC 6749 §6); the current token lives in `refreshTokenFile`,
        /// and a rotated one from the reply is written back there.
        case refreshToken(clientID: String, secret: Secret?, refreshTokenFile: String)
    }

    public var provider: Provider
    public var grant: Grant
    public var tokenURL: String
    /// nil: no scope parameter (a refresh grant may leave it to the original consent).
    public var scope: String?
    public var mechanism: Mechanism
    /// PEM bundle for the token endpoint instead of the system store; absolute path.
    public var caFile: String?

    public init(provider: Provider, grant: Grant, tokenURL: String, scope: String?,
                mechanism: Mechanism = .xoauth2, caFile: String? = nil) {
        self.provider = provider
        self.grant = grant
        self.tokenURL = tokenURL
        self.scope = scope
        self.mechanism = mechanism
        self.caFile = caFile
    }

    /// Routes and orgs that share this key share one cached token: same endpoint, same
    /// client, same scope, same subject. Secrets are named by where they came from only.
    public var cacheKey: String {
        var parts = [provider.rawValue, tokenURL, scope ?? "-", caFile ?? "-"]
        switch grant {
        case .clientSecret(let id, let secret): parts += ["secret", id, secret.origin]
        case .clientCertificate(let id, let thumbprints, _): parts += ["certificate", id, thumbprints.sha256]
        case .serviceAccount(let email, _, _, let subject): parts += ["service-account", email, subject]
        case .refreshToken(let id, _, let file): parts += ["refresh", id, file]
        }
        return parts.joined(separator: "|")
    }

    /// One line for `check-config` and `smarthost test`, secrets as their origin.
    public var summary: String {
        let grantText: String
        switch grant {
        case .clientSecret(let id, let secret):
            grantText = "client credentials, client_id \(id), client secret \(secret) (\(secret.origin))"
        case .clientCertificate(let id, let thumbprints, let key):
            grantText = "client credentials, client_id \(id), certificate x5t#S256 \(thumbprints.sha256), key \(key) (\(key.origin))"
        case .serviceAccount(let email, _, let key, let subject):
            grantText = "service account \(email) acting for \(subject), key \(key) (\(key.origin))"
        case .refreshToken(let id, let secret, let file):
            grantText = "refresh token from \(file), client_id \(id)" + (secret.map { ", client secret \($0) (\($0.origin))" } ?? "")
        }
        return "oauth2 \(provider.rawValue) \(mechanism.rawValue): \(grantText); token_url \(tokenURL)"
            + (scope.map { ", scope \($0)" } ?? "") + (caFile.map { ", ca_file \($0)" } ?? "")
    }

    // MARK: Provider defaults

    public static func microsoftTokenURL(tenant: String) -> String {
        "https://login.microsoftonline.com/\(CurlHTTPClient.percentEncode(tenant))/oauth2/v2.0/token"
    }

    public static let microsoftScope = "https://outlook.office365.com/.default"
    public static let googleScope = "https://mail.google.com/"
    public static let googleTokenURL = "https://oauth2.googleapis.com/token"
}
