extension RelayConfig.Schema {
    /// `username` with exactly one of `password`, `password_file`, `password_env`.
    struct RouteAuth {
        var username: String?
        var password: Secret?
        /// The secret's file or variable does not exist yet: the route is configured but
        /// cannot authenticate until the operator provides it (`RouteSettings.missingCredential`).
        var missing: String?
        var oauth2: OAuth2Settings?
    }

    /// Reads the credentials of a route. Errors name the key, the file or the variable,
    /// never the secret: these messages go to terminals and journals.
    mutating func decodeAuth(_ section: Section, tls: TLSMode) -> RouteAuth {
        let sources = Self.passwordKeys.compactMap { section.field($0) }
        if let oauthField = section.field("oauth2") {
            for source in sources {
                reader.report(source.line, source.path, "a route authenticates with a password or with oauth2:, not both (oauth2 at line \(oauthField.keyLine ?? 0))")
            }
            let username = section.field("username").flatMap { reader.string($0) }
            missingCredential = nil
            let oauth2 = decodeOAuth2(oauthField, username: username)
            defer { missingCredential = nil }
            return RouteAuth(username: username, password: nil, missing: missingCredential, oauth2: oauth2)
        }
        for extra in sources.dropFirst() {
            let first = sources[0]
            let at = first.line.map { " at line \($0)" } ?? ""
            reader.report(extra.line, extra.path,
                          "password given twice (also \(first.key)\(at)); keep one of password, password_file, password_env")
        }
        var auth = RouteAuth()
        if let field = section.field("username"), let name = reader.string(field) {
            auth.username = name
            if sources.isEmpty {
                reader.report(field.line, field.path, "set without a password; add password, password_file or password_env")
            }
        }
        if sources.count == 1 {
            let field = sources[0]
            if auth.username == nil, !section.has("username") {
                reader.report(field.line, field.path, "a password needs a username")
            }
            (auth.password, auth.missing) = resolveSecret(field)
        }
        return auth
    }

    /// Reads the secret the field points at. A file or variable that does not exist is not
    /// an error: a fresh install starts, holds this route's mail and says what is missing.
    private mutating func resolveSecret(_ field: Field) -> (Secret?, missing: String?) {
        guard let text = reader.string(field) else { return (nil, nil) }
        let result: Result<Secret, Secret.LoadError>
        switch field.key {
        case "password_env":
            result = Secret.fromEnvironment(text, environment)
        case "password_file":
            result = loadSecretFile(text)
        default:
            return (Secret(revealed: text, origin: "inline"), nil)
        }
        switch result {
        case .success(let secret): return (secret, nil)
        case .failure(.missing(let path)):
            return (nil, "\(field.key) \(text): \(path) does not exist" + Self.credentialHint(text))
        case .failure(.envNotSet(let name)):
            return (nil, "password_env: environment variable \(name) is not set")
        case .failure(let error):
            reader.report(field.line, field.path, error.description)
            return (nil, nil)
        }
    }

    /// Under systemd, `LoadCredential=smarthost:/etc/smarthost/credentials` copies every file
    /// of that directory into `$CREDENTIALS_DIRECTORY` as `smarthost_<name>`; a single
    /// `LoadCredential=<name>:…` line keeps the name. A relative `password_file` finds either.
    /// By hand (`sudo smarthost check-config`) it is next to the config file, or in the
    /// `credentials/` directory beside it, where the packaged units load them from.
    func loadSecretFile(_ path: String) -> Result<Secret, Secret.LoadError> {
        guard !path.hasPrefix("/") else { return Secret.fromFile(path) }
        var candidates: [(path: String, trusted: Bool)]
        if let credentials = environment["CREDENTIALS_DIRECTORY"], !credentials.isEmpty {
            candidates = [(RelayConfig.resolve(path, under: credentials), true),
                          (RelayConfig.resolve(Self.credentialPrefix + path, under: credentials), true)]
        } else {
            candidates = [(RelayConfig.resolve(path, under: baseDirectory), false),
                          (RelayConfig.resolve("credentials/" + path, under: baseDirectory), false)]
        }
        if path.contains("/") { candidates.removeLast() }
        // The first candidate's "does not exist" is the one reported: it names the usual place.
        var firstMissing: Result<Secret, Secret.LoadError>?
        for (index, candidate) in candidates.enumerated() {
            let result = Secret.fromFile(candidate.path, trustedDirectory: candidate.trusted)
            switch result {
            case .failure(.missing):
                firstMissing = firstMissing ?? result
            case .failure(.cannotOpen) where index > 0:
                // A place we only look in as a fallback (root's credentials/ directory, seen
                // by another user): not this process's secret; the usual place is reported.
                continue
            default:
                return result
            }
        }
        return firstMissing!
    }

    /// Where a key file named relative is: `$CREDENTIALS_DIRECTORY` under systemd, else
    /// beside the config (certificates and refresh tokens, which are not found by name).
    func secretPath(_ path: String) -> String {
        let credentials = environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
        return RelayConfig.resolve(path, under: credentials ?? baseDirectory)
    }

    /// The ID of the unit's directory `LoadCredential=` line.
    static let credentialPrefix = "smarthost_"
    /// Where the packaged units load credentials from.
    static let credentialSourceDirectory = "/etc/smarthost/credentials"

    static func credentialHint(_ name: String) -> String {
        guard !name.hasPrefix("/"), !name.contains("/") else { return "" }
        return " (put it in \(credentialSourceDirectory)/\(name), mode 0600, then systemctl restart smarthost)"
    }
}
