#if canImport(Glibc)
import Glibc
#endif

extension RelayConfig.Schema {
    static let oauth2Keys = ["provider", "tenant", "client_id", "client_secret_file", "client_certificate_file",
                             "client_key_file", "service_account_file", "refresh_token_file", "token_url", "scope",
                             "mechanism", "ca_file"]

    /// The keys a route's `oauth2:` block read, by name, so the grant can be worked out
    /// once every key has been checked (all problems in one run).
    private struct OAuth2Fields {
        var section: RelayConfig.Section
        var provider: OAuth2Settings.Provider?
        var clientID: String?
        var tenant: String?
        var tokenURL: String?
        var scope: String?

        func field(_ key: String) -> RelayConfig.Field? { section.field(key) }
        func has(_ key: String) -> Bool { section.has(key) }
    }

    /// `oauth2:` (product.md §7.2). Key files get `password_file`'s checks and
    /// `$CREDENTIALS_DIRECTORY`; keys and service-account files are parsed now, so a bad
    /// one is a config error with its line, not a deferral at 3 a.m.
    mutating func decodeOAuth2(_ field: Field, username: String?) -> OAuth2Settings? {
        guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: Self.oauth2Keys)
        else { return nil }
        var fields = OAuth2Fields(section: section)
        guard let providerField = section.field("provider") else {
            reader.missing(section, "provider", "one of: microsoft, google, generic")
            return nil
        }
        fields.provider = reader.choice(providerField, OAuth2Settings.Provider.self)
        fields.clientID = section.field("client_id").flatMap { reader.string($0) }
        fields.tenant = section.field("tenant").flatMap { reader.string($0) }
        fields.scope = section.field("scope").flatMap { reader.string($0) }
        if let f = section.field("token_url"), let url = reader.string(f) {
            if url.lowercased().hasPrefix("https://"), url.count > 8, !url.contains(where: { $0.isWhitespace }) {
                fields.tokenURL = url
            } else {
                reader.report(f.line, f.path, "\(url) is not an https:// URL (tokens never travel in clear text)")
            }
        }
        var mechanism = OAuth2Settings.Mechanism.xoauth2
        if let f = section.field("mechanism"), let chosen = reader.choice(f, OAuth2Settings.Mechanism.self) { mechanism = chosen }
        let caFile = section.field("ca_file").flatMap { f in reader.string(f).flatMap { readablePath($0, f) } }
        if username == nil {
            reader.report(field.keyLine, field.path, "needs the route's username: the mailbox to send as (XOAUTH2 user=, OAUTHBEARER a=)")
        }
        guard let provider = fields.provider else { return nil }
        let grant: (OAuth2Settings.Grant, tokenURL: String?)?
        switch provider {
        case .microsoft: grant = microsoftGrant(&fields)
        case .google: grant = googleGrant(&fields, subject: username ?? "")
        case .generic: grant = genericGrant(&fields)
        }
        guard let (grantValue, url) = grant, let tokenURL = url else { return nil }
        let scope = fields.scope ?? Self.defaultScope(provider, grantValue)
        return OAuth2Settings(provider: provider, grant: grantValue, tokenURL: tokenURL, scope: scope,
                              mechanism: mechanism, caFile: caFile)
    }

    private static func defaultScope(_ provider: OAuth2Settings.Provider, _ grant: OAuth2Settings.Grant) -> String? {
        switch provider {
        case .microsoft: return OAuth2Settings.microsoftScope
        case .google:
            if case .refreshToken = grant { return nil }   // the consent already fixed it
            return OAuth2Settings.googleScope
        case .generic: return nil
        }
    }

    // MARK: Providers

    private mutating func microsoftGrant(_ f: inout OAuth2Fields) -> (OAuth2Settings.Grant, tokenURL: String?)? {
        refuse(f, ["service_account_file", "refresh_token_file"], provider: "microsoft")
        let url = f.tokenURL ?? f.tenant.map(OAuth2Settings.microsoftTokenURL(tenant:))
        if f.tenant == nil, f.tokenURL == nil, !f.has("tenant") {
            reader.missing(f.section, "tenant", "the directory (tenant) id or domain, for the token URL")
        }
        let clientID = requireClientID(f)
        let hasSecret = f.has("client_secret_file")
        let hasCertificate = f.has("client_certificate_file") || f.has("client_key_file")
        if hasSecret && hasCertificate, let field = f.field("client_secret_file") {
            reader.report(field.line, field.path, "give client_secret_file or client_certificate_file + client_key_file, not both")
            return nil
        }
        if hasCertificate {
            guard let certField = f.field("client_certificate_file") else {
                reader.missing(f.section, "client_certificate_file", "client_key_file needs its certificate")
                return nil
            }
            guard let keyField = f.field("client_key_file") else {
                reader.missing(f.section, "client_key_file", "the certificate's private key")
                return nil
            }
            let thumbprints = certificateThumbprints(certField)
            let key = privateKey(keyField)
            guard let clientID, let thumbprints, let key else { return nil }
            return (.clientCertificate(clientID: clientID, thumbprints: thumbprints, key: key), url)
        }
        guard let secretField = f.field("client_secret_file") else {
            reader.missing(f.section, "client_secret_file", "or client_certificate_file + client_key_file")
            return nil
        }
        guard let secret = secretFile(secretField), let clientID else { return nil }
        return (.clientSecret(clientID: clientID, secret: secret), url)
    }

    private mutating func googleGrant(_ f: inout OAuth2Fields, subject: String) -> (OAuth2Settings.Grant, tokenURL: String?)? {
        refuse(f, ["tenant", "client_certificate_file", "client_key_file"], provider: "google")
        if let saField = f.field("service_account_file") {
            refuse(f, ["client_id", "client_secret_file", "refresh_token_file"], provider: "google with service_account_file")
            guard let account = serviceAccount(saField) else { return nil }
            return (.serviceAccount(email: account.email, keyID: account.keyID, key: account.key, subject: subject),
                    f.tokenURL ?? account.tokenURL ?? OAuth2Settings.googleTokenURL)
        }
        guard let refreshField = f.field("refresh_token_file") else {
            reader.missing(f.section, "service_account_file", "or client_id + client_secret_file + refresh_token_file")
            return nil
        }
        let clientID = requireClientID(f)
        let secret = f.field("client_secret_file").flatMap { secretFile($0) }
        if !f.has("client_secret_file") { reader.missing(f.section, "client_secret_file", "the OAuth client's secret") }
        guard let file = refreshTokenFile(refreshField), let clientID, let secret else { return nil }
        return (.refreshToken(clientID: clientID, secret: secret, refreshTokenFile: file),
                f.tokenURL ?? OAuth2Settings.googleTokenURL)
    }

    private mutating func genericGrant(_ f: inout OAuth2Fields) -> (OAuth2Settings.Grant, tokenURL: String?)? {
        refuse(f, ["tenant", "service_account_file", "client_certificate_file", "client_key_file"], provider: "generic")
        if f.tokenURL == nil, !f.has("token_url") { reader.missing(f.section, "token_url", "required for provider generic") }
        let clientID = requireClientID(f)
        let secret = f.field("client_secret_file").flatMap { secretFile($0) }
        if let refreshField = f.field("refresh_token_file") {
            // A public client has no secret: the refresh token alone is the grant.
            guard let file = refreshTokenFile(refreshField), let clientID else { return nil }
            if f.has("client_secret_file"), secret == nil { return nil }
            return (.refreshToken(clientID: clientID, secret: secret, refreshTokenFile: file), f.tokenURL)
        }
        if !f.has("client_secret_file") {
            reader.missing(f.section, "client_secret_file", "client credentials need the client secret (or give refresh_token_file)")
        }
        guard let clientID, let secret else { return nil }
        return (.clientSecret(clientID: clientID, secret: secret), f.tokenURL)
    }

    // MARK: Keys and files

    private mutating func refuse(_ f: OAuth2Fields, _ keys: [String], provider: String) {
        for key in keys {
            if let field = f.field(key) { reader.report(field.keyLine, field.path, "not used with provider \(provider)") }
        }
    }

    private mutating func requireClientID(_ f: OAuth2Fields) -> String? {
        if f.clientID == nil, !f.has("client_id") { reader.missing(f.section, "client_id", "the application (client) id") }
        return f.clientID
    }

    /// A secret file: 0600/0400, regular, non-empty; relative to `$CREDENTIALS_DIRECTORY`.
    /// One that does not exist yet marks the route (`missingCredential`): the relay starts
    /// and holds its mail, as for a missing password_file.
    private mutating func secretFile(_ field: Field) -> Secret? {
        guard let text = reader.string(field) else { return nil }
        switch loadSecretFile(text) {
        case .success(let secret): return secret
        case .failure(.missing(let path)):
            missingCredential = missingCredential ?? "\(field.path.split(separator: ".").last ?? "") \(text): \(path) does not exist"
                + Self.credentialHint(text)
            return nil
        case .failure(let error):
            reader.report(field.line, field.path, error.description)
            return nil
        }
    }

    private mutating func privateKey(_ field: Field) -> Secret? {
        guard let key = secretFile(field) else { return nil }
        do {
            _ = try JWTSigner(privateKeyPEM: key.revealed)
        } catch {
            reader.report(field.line, field.path, "\(key.origin): \(error.description)")
            return nil
        }
        return key
    }

    /// A certificate is public: any readable file will do.
    private mutating func certificateThumbprints(_ field: Field) -> CertificateThumbprints? {
        guard let text = reader.string(field) else { return nil }
        let path = secretPath(text)
        guard let pem = Self.readSmallFile(path) else {
            reader.report(field.line, field.path, "cannot read \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        do {
            return try CertificateThumbprints(certificatePEM: pem)
        } catch {
            reader.report(field.line, field.path, "\(path): \(error.description)")
            return nil
        }
    }

    /// The refresh token file is rewritten when the endpoint rotates the token: its
    /// directory must be writable (a systemd credential is not; keep it in StateDirectory=).
    private mutating func refreshTokenFile(_ field: Field) -> String? {
        guard let text = reader.string(field) else { return nil }
        let path = secretPath(text)
        if case .failure(let error) = Secret.fromFile(path) {
            reader.report(field.line, field.path, error.description)
            return nil
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        guard access(directory.isEmpty ? "/" : directory, W_OK) == 0 else {
            reader.report(field.line, field.path, "\(directory) is not writable: a rotated refresh token is written back "
                          + "beside \(path) (keep it in a state directory, not in \\$CREDENTIALS_DIRECTORY)")
            return nil
        }
        return path
    }

    private struct ServiceAccount {
        var email: String
        var keyID: String?
        var key: Secret
        var tokenURL: String?
    }

    /// Google's service-account key file (JSON with `client_email`, `private_key`,
    /// `token_uri`). It holds a private key: the same checks as a password file.
    private mutating func serviceAccount(_ field: Field) -> ServiceAccount? {
        guard let file = secretFile(field) else { return nil }
        guard let parsed = JSONObject(bytes: Array(file.revealed.utf8)) else {
            reader.report(field.line, field.path, "\(file.origin) is not a service-account key file (JSON)")
            return nil
        }
        guard let email = parsed.string("client_email"), let pem = parsed.string("private_key") else {
            reader.report(field.line, field.path, "\(file.origin) has no client_email or private_key: "
                          + "create a JSON key for the service account")
            return nil
        }
        do {
            _ = try JWTSigner(privateKeyPEM: pem)
        } catch {
            reader.report(field.line, field.path, "\(file.origin): private_key: \(error.description)")
            return nil
        }
        return ServiceAccount(email: email, keyID: parsed.string("private_key_id"),
                              key: Secret(revealed: pem, origin: file.origin), tokenURL: parsed.string("token_uri"))
    }

    private mutating func readablePath(_ text: String, _ field: Field) -> String? {
        let path = RelayConfig.resolve(text, under: baseDirectory)
        guard access(path, R_OK) == 0 else {
            reader.report(field.line, field.path, "cannot read \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        return path
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return n == 0 ? String(decoding: out, as: UTF8.self) : nil }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
