import Foundation
import Testing
@testable import SmarthostCore

/// The `oauth2:` block: provider defaults, files checked like password files, keys and
/// service-account JSON parsed at load, every mistake named with its key and line.
@Suite struct ConfigOAuth2Tests {
    /// The default route with an oauth2 block; `lines` are indented under `oauth2:` (line 6 on).
    static func yaml(_ lines: [String], extra: String = "") -> String {
        """
        default:
          host: smtp.office365.com
          port: 587
          username: alerts@contoso.example
          oauth2:
        \(lines.map { "    " + $0 }.joined(separator: "\n"))
        \(extra)
        """
    }

    static let keys: (dir: String, key: String, cert: String, secret: String) = {
        let dir = ConfigTestSupport.makeTempDirectory()
        _ = try? ToolRun.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/app.key",
                                                   "-out", dir + "/app.pem", "-subj", "/CN=t", "-days", "1"])
        chmod(dir + "/app.key", 0o600)
        ConfigTestSupport.writeFile(dir + "/client.secret", "s3cret-value\n", mode: 0o600)
        return (dir, dir + "/app.key", dir + "/app.pem", dir + "/client.secret")
    }()

    @Test func microsoftClientSecretGetsTheTenantURLAndScope() throws {
        let config = try ConfigTestSupport.parse(Self.yaml(["provider: microsoft", "tenant: contoso.example", "client_id: app-1",
                                                            "client_secret_file: \(Self.keys.secret)"]))
        let oauth = try #require(config.defaultRoute.oauth2)
        #expect(oauth.tokenURL == "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token")
        #expect(oauth.scope == "https://outlook.office365.com/.default")
        #expect(oauth.mechanism == .xoauth2)
        #expect(oauth.grant == .clientSecret(clientID: "app-1", secret: Secret(revealed: "s3cret-value", origin: "file \(Self.keys.secret)")))
        let report = ConfigReport.render(config)
        #expect(report.contains("oauth2 microsoft xoauth2: client credentials, client_id app-1, client secret ********"))
        #expect(!report.contains("s3cret-value"))
    }

    @Test func microsoftCertificateCredentialParsesTheCertificateAndKey() throws {
        let config = try ConfigTestSupport.parse(Self.yaml(["provider: microsoft", "tenant: t", "client_id: app-1",
                                                            "client_certificate_file: \(Self.keys.cert)",
                                                            "client_key_file: \(Self.keys.key)", "mechanism: oauthbearer"]))
        guard case .clientCertificate(_, let thumbprints, _)? = config.defaultRoute.oauth2?.grant else {
            Issue.record("expected a certificate grant")
            return
        }
        #expect(thumbprints.sha256.count == 43)
        #expect(config.defaultRoute.oauth2?.mechanism == .oauthbearer)
    }

    @Test func passwordAndOAuth2TogetherIsAnErrorAtThePasswordLine() {
        let issues = ConfigTestSupport.issues(Self.yaml(["provider: microsoft", "tenant: t", "client_id: a",
                                                         "client_secret_file: \(Self.keys.secret)"],
                                                        extra: "  password: hunter2"))
        let issue = issues.first { $0.message.contains("not both") }
        #expect(issue?.line == 10, "\(issues)")
        #expect(issue?.keyPath == "default.password")
        #expect(!issues.description.contains("hunter2"))
    }

    @Test func providerSpecificRequiredKeysAreNamedWithTheirLine() {
        let microsoft = ConfigTestSupport.issues(Self.yaml(["provider: microsoft", "client_secret_file: \(Self.keys.secret)"]))
        #expect(microsoft.contains { $0.keyPath == "default.oauth2.tenant" && $0.line == 5 })
        #expect(microsoft.contains { $0.keyPath == "default.oauth2.client_id" && $0.line == 5 })
        let generic = ConfigTestSupport.issues(Self.yaml(["provider: generic", "client_id: a"]))
        #expect(generic.contains { $0.keyPath == "default.oauth2.token_url" })
        #expect(generic.contains { $0.keyPath == "default.oauth2.client_secret_file" })
        let google = ConfigTestSupport.issues(Self.yaml(["provider: google", "tenant: t"]))
        #expect(google.contains { $0.keyPath == "default.oauth2.tenant" && $0.message.contains("not used with provider google") })
        #expect(google.contains { $0.keyPath == "default.oauth2.service_account_file" })
        let unknown = ConfigTestSupport.issues(Self.yaml(["provider: okta"]))
        #expect(unknown.contains { $0.line == 6 && $0.message.contains("not one of: microsoft, google, generic") })
        let typo = ConfigTestSupport.issues(Self.yaml(["provider: generic", "token_uri: https://x/t"]))
        #expect(typo.contains { $0.message.contains("did you mean token_url") })
    }

    @Test func keyFilesGetPasswordFileChecksAndKeysMustParse() {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/open.secret", "x\n", mode: 0o644)
        ConfigTestSupport.writeFile(dir + "/garbage.key", "not a key\n", mode: 0o600)
        let open = ConfigTestSupport.issues(Self.yaml(["provider: microsoft", "tenant: t", "client_id: a",
                                                       "client_secret_file: \(dir)/open.secret"]))
        #expect(open.contains { $0.line == 9 && $0.message.contains("accessible by group or others") })
        let garbage = ConfigTestSupport.issues(Self.yaml(["provider: microsoft", "tenant: t", "client_id: a",
                                                          "client_certificate_file: \(Self.keys.cert)",
                                                          "client_key_file: \(dir)/garbage.key"]))
        #expect(garbage.contains { $0.line == 10 && $0.message.contains("not a PEM private key") })
    }

    @Test func serviceAccountFileIsParsedAndRelativeToCredentialsDirectory() throws {
        let credentials = ConfigTestSupport.makeTempDirectory()
        let pem = (try? String(contentsOfFile: Self.keys.key, encoding: .utf8)) ?? ""
        let json = try JSONSerialization.data(withJSONObject: ["type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com",
                                                               "private_key": pem, "private_key_id": "k1",
                                                               "token_uri": "https://oauth2.googleapis.com/token"])
        ConfigTestSupport.writeFile(credentials + "/sa.json", String(decoding: json, as: UTF8.self), mode: 0o400)
        ConfigTestSupport.writeFile(credentials + "/bad.json", "{\"client_email\": 3", mode: 0o400)
        let config = try ConfigTestSupport.parse(Self.yaml(["provider: google", "service_account_file: sa.json"]),
                                                 environment: ["CREDENTIALS_DIRECTORY": credentials])
        let oauth = try #require(config.defaultRoute.oauth2)
        #expect(oauth.tokenURL == "https://oauth2.googleapis.com/token" && oauth.scope == "https://mail.google.com/")
        guard case .serviceAccount(let email, let keyID, _, let subject) = oauth.grant else {
            Issue.record("expected a service account")
            return
        }
        #expect(email == "sa@p.iam.gserviceaccount.com" && keyID == "k1" && subject == "alerts@contoso.example")
        let bad = ConfigTestSupport.issues(Self.yaml(["provider: google", "service_account_file: bad.json"]),
                                           environment: ["CREDENTIALS_DIRECTORY": credentials])
        #expect(bad.contains { $0.line == 7 && $0.message.contains("not a service-account key file") })
        #expect(!bad.description.contains("PRIVATE KEY"))
    }

    @Test func tokenURLMustBeHTTPSAndUsernameIsRequired() {
        let issues = ConfigTestSupport.issues("""
            default:
              host: smtp.example.com
              port: 587
              oauth2:
                provider: generic
                token_url: http://idp.example/token
                client_id: a
                client_secret_file: \(Self.keys.secret)
            """)
        #expect(issues.contains { $0.line == 6 && $0.message.contains("not an https:// URL") })
        #expect(issues.contains { $0.line == 4 && $0.message.contains("needs the route's username") })
    }

    @Test func refreshTokenFileMustBeInAWritableDirectory() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/rt.secret", "rt\n", mode: 0o600)
        let yaml = Self.yaml(["provider: generic", "token_url: https://idp.example/token", "client_id: a",
                              "refresh_token_file: \(dir)/rt.secret"])
        let config = try ConfigTestSupport.parse(yaml)
        #expect(config.defaultRoute.oauth2?.grant == .refreshToken(clientID: "a", secret: nil, refreshTokenFile: dir + "/rt.secret"))
        #expect(config.defaultRoute.oauth2?.scope == nil)
    }
}
