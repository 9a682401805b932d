extension RelayConfig.Schema {
    /// `username` with exactly one of `password`, `password_file`, `password_env`, or
    /// with `oauth2:` (product.md §7.2: never both).
    struct RouteAuth {
        var username: String?
        var password: Secret?
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
            return RouteAuth(username: username, password: nil, oauth2: decodeOAuth2(oauthField, username: username))
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
            auth.password = resolveSecret(field)
        }
        return auth
    }

    /// Reads the secret the field points at.
    private mutating func resolveSecret(_ field: Field) -> Secret? {
        guard let text = reader.string(field) else { return nil }
        let result: Result<Secret, Secret.LoadError>
        switch field.key {
        case "password_env":
            result = Secret.fromEnvironment(text, environment)
        case "password_file":
            result = Secret.fromFile(secretPath(text))
        default:
            return Secret(revealed: text, origin: "inline")
        }
        switch result {
        case .success(let secret): return secret
        case .failure(let error):
            reader.report(field.line, field.path, error.description)
            return nil
        }
    }

    /// Under systemd, `LoadCredential=` puts secrets in `$CREDENTIALS_DIRECTORY` and a
    /// relative `password_file` names one there; otherwise it is relative to the config file.
    func secretPath(_ path: String) -> String {
        let credentials = environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
        return RelayConfig.resolve(path, under: credentials ?? baseDirectory)
    }
}
