import Foundation
import Testing
@testable import SmarthostCore

/// The forms sent to token endpoints, and the JWTs in them: claims checked here, signatures
/// verified by python3-jwt (a real, independent verifier).
@Suite struct OAuth2TokenRequestTests {
    static let keys: (key: String, certificate: String) = {
        let dir = NSTemporaryDirectory() + "smarthost-jwt-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try? ToolRun.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/k.pem",
                                                   "-out", dir + "/c.pem", "-subj", "/CN=t", "-days", "1"])
        return ((try? String(contentsOfFile: dir + "/k.pem", encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: dir + "/c.pem", encoding: .utf8)) ?? "")
    }()

    static func field(_ request: OAuth2TokenRequest, _ name: String) -> String? {
        request.fields.first { $0.0 == name }?.1
    }

    static func decodePart(_ jwt: String, _ index: Int) -> [String: Any] {
        var text = String(jwt.split(separator: ".")[index]).replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        let data = Data(base64Encoded: text) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// python3-jwt checks the signature with the certificate's public key.
    static func verify(_ jwt: String, algorithm: String, audience: String) throws -> Bool {
        let script = """
        import sys, jwt
        from cryptography import x509
        key = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read()).public_key()
        jwt.decode(sys.argv[2], key, algorithms=[sys.argv[3]], audience=sys.argv[4])
        print('VALID')
        """
        let certPath = NSTemporaryDirectory() + "smarthost-jwt-cert-\(UUID().uuidString).pem"
        try keys.certificate.write(toFile: certPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: certPath) }
        let run = try ToolRun.run("/usr/bin/python3", ["-c", script, certPath, jwt, algorithm, audience])
        return run.output.contains("VALID")
    }

    @Test func clientSecretGrant() throws {
        let settings = OAuth2Settings(provider: .microsoft,
                                      grant: .clientSecret(clientID: "app", secret: Secret(revealed: "a+b&c=d", origin: "t")),
                                      tokenURL: OAuth2Settings.microsoftTokenURL(tenant: "contoso.example"),
                                      scope: OAuth2Settings.microsoftScope)
        let request = try OAuth2TokenRequest.make(settings, now: 1_000)
        #expect(request.url == "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token")
        #expect(request.fields.map(\.0) == ["grant_type", "client_id", "client_secret", "scope"])
        #expect(CurlHTTPClient.formEncode(request.fields)
                == "grant_type=client_credentials&client_id=app&client_secret=a%2Bb%26c%3Dd&scope=https%3A%2F%2Foutlook.office365.com%2F.default")
    }

    @Test func clientCertificateAssertionIsPS256WithTheThumbprint() throws {
        let thumbprints = try CertificateThumbprints(certificatePEM: Self.keys.certificate)
        let url = "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        let settings = OAuth2Settings(provider: .microsoft,
                                      grant: .clientCertificate(clientID: "app", thumbprints: thumbprints,
                                                                key: Secret(revealed: Self.keys.key, origin: "t")),
                                      tokenURL: url, scope: OAuth2Settings.microsoftScope)
        let request = try OAuth2TokenRequest.make(settings, now: Int(Date().timeIntervalSince1970), jwtID: "id-1")
        #expect(Self.field(request, "client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        #expect(Self.field(request, "client_secret") == nil)
        let jwt = try #require(Self.field(request, "client_assertion"))
        let header = Self.decodePart(jwt, 0), claims = Self.decodePart(jwt, 1)
        #expect(header["alg"] as? String == "PS256")
        #expect(header["x5t#S256"] as? String == thumbprints.sha256)
        #expect(thumbprints.sha256.count == 43, "base64url of 32 bytes, no padding")
        #expect(claims["aud"] as? String == url && claims["iss"] as? String == "app" && claims["sub"] as? String == "app")
        #expect(claims["jti"] as? String == "id-1")
        #expect(try Self.verify(jwt, algorithm: "PS256", audience: url))
    }

    @Test func serviceAccountJWTIsRS256ForTheMailbox() throws {
        let url = "https://oauth2.googleapis.com/token"
        let settings = OAuth2Settings(provider: .google,
                                      grant: .serviceAccount(email: "sa@p.iam.gserviceaccount.com", keyID: "k1",
                                                             key: Secret(revealed: Self.keys.key, origin: "t"),
                                                             subject: "alerts@acme.example"),
                                      tokenURL: url, scope: OAuth2Settings.googleScope)
        let now = Int(Date().timeIntervalSince1970)
        let request = try OAuth2TokenRequest.make(settings, now: now)
        #expect(request.fields.map(\.0) == ["grant_type", "assertion"])
        #expect(Self.field(request, "grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer")
        let jwt = try #require(Self.field(request, "assertion"))
        let header = Self.decodePart(jwt, 0), claims = Self.decodePart(jwt, 1)
        #expect(header["alg"] as? String == "RS256" && header["kid"] as? String == "k1")
        #expect(claims["sub"] as? String == "alerts@acme.example" && claims["scope"] as? String == "https://mail.google.com/")
        #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) <= 3600)
        #expect(try Self.verify(jwt, algorithm: "RS256", audience: url))
    }

    @Test func refreshGrantNeedsAToken() throws {
        let settings = OAuth2Settings(provider: .generic,
                                      grant: .refreshToken(clientID: "app", secret: nil, refreshTokenFile: "/x"),
                                      tokenURL: "https://idp.example/token", scope: nil)
        let request = try OAuth2TokenRequest.make(settings, now: 0, refreshToken: "rt-1")
        #expect(request.fields.map { "\($0.0)=\($0.1)" } == ["grant_type=refresh_token", "client_id=app", "refresh_token=rt-1"])
        #expect(throws: OAuth2TokenRequest.BuildError.self) { try OAuth2TokenRequest.make(settings, now: 0, refreshToken: "") }
    }

    @Test func aKeyThatIsNotRSAOrNotAKeyIsRefusedWithoutQuotingIt() {
        #expect(throws: JWTSigner.KeyError.self) { try JWTSigner(privateKeyPEM: "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n") }
        do {
            _ = try JWTSigner(privateKeyPEM: "secret-material")
        } catch {
            #expect(!error.description.contains("secret-material"))
        }
    }

    // MARK: Replies

    @Test func successReplyWithStringExpiryAndRotatedRefreshToken() throws {
        let body = Array(#"{"access_token":"at-1","expires_in":"3599","refresh_token":"rt-2","token_type":"Bearer"}"#.utf8)
        let token = try OAuth2TokenResponse.parse(status: 200, body: body, endpoint: "https://e/t").get()
        #expect(token.accessToken.revealed == "at-1" && token.expiresIn == 3599)
        #expect(token.rotatedRefreshToken?.revealed == "rt-2")
    }

    @Test func entraErrorKeepsTheFirstLineAndTheAADSTSCode() {
        let body = Array(#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2"}"#.utf8)
        guard case .failure(let error) = OAuth2TokenResponse.parse(status: 401, body: body, endpoint: "https://e/t") else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.description == "oauth2 token: https://e/t: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided.")
        #expect(error.aadstsCode == "AADSTS7000215")
        #expect(ProbeFailure.tokenHint(error)?.contains("secret") == true)
    }

    @Test func aGatewayPageIsNotAnOAuthError() {
        guard case .failure(let error) = OAuth2TokenResponse.parse(status: 502, body: Array("<html>bad gateway</html>".utf8),
                                                                   endpoint: "https://e/t") else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.description == "oauth2 token: https://e/t: HTTP 502: not an OAuth2 error reply")
    }

    @Test func transportErrorReadsLikeCurl() {
        let error = OAuth2TokenError(endpoint: "https://e/t", transport: "Failed to connect to e port 443: Connection refused")
        #expect(error.description == "oauth2 token: https://e/t: Failed to connect to e port 443: Connection refused")
        #expect(ProbeFailure.tokenHint(error)?.contains("HTTPS_PROXY") == true)
    }

    @Test func rotatedRefreshTokenIsWrittenAtomicallyPrivate() throws {
        let dir = NSTemporaryDirectory() + "smarthost-rt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/rt.secret"
        try "old\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(OAuth2TokenFetcher.writeSecretAtomically("new\n", to: path) == nil)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new\n")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["rt.secret"], "no temporary file left")
    }
}
