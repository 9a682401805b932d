import Testing
@testable import SmarthostCore

/// Token endpoints' JSON, read by the YAML parser: the escapes and layouts real endpoints
/// send (Entra ID escapes `/` as `\/`; Python's json.dumps writes `\uXXXX` and surrogate
/// pairs; pretty printers indent with tabs).
@Suite struct OAuth2TokenResponseTests {
    static func token(_ json: String, status: Int = 200) throws -> OAuth2Token {
        try OAuth2TokenResponse.parse(status: status, body: Array(json.utf8), endpoint: "https://e/t").get()
    }

    static func failure(_ json: String, status: Int) -> OAuth2TokenError? {
        guard case .failure(let error) = OAuth2TokenResponse.parse(status: status, body: Array(json.utf8), endpoint: "https://e/t") else {
            return nil
        }
        return error
    }

    @Test func escapesAreDecoded() throws {
        let token = try Self.token(#"{"access_token":"a\/b\\c\"d\u00e9\u20ac\ud83d\ude00\n\t","expires_in":3599}"#)
        #expect(token.accessToken.revealed == "a/b\\c\"d\u{e9}\u{20ac}\u{1F600}\n\t")
        #expect(token.expiresIn == 3599)
    }

    @Test func aLoneSurrogateBecomesTheReplacementCharacter() throws {
        #expect(try Self.token(#"{"access_token":"x\ud83dy"}"#).accessToken.revealed == "x\u{FFFD}y")
        #expect(try Self.token(#"{"access_token":"x\ude00\ud83d"}"#).accessToken.revealed == "x\u{FFFD}\u{FFFD}")
    }

    @Test func anEscapedBackslashIsNotAnEscape() throws {
        // `\\ud83d` is a backslash and the letters "ud83d", not a surrogate.
        #expect(try Self.token(#"{"access_token":"\\ud83d\\ude00"}"#).accessToken.revealed == #"\ud83d\ude00"#)
        #expect(JSONObject.yamlEscapes(Array(#"{"k":"\\ud83d"}"#.utf8)) == Array(#"{"k":"\\ud83d"}"#.utf8))
    }

    @Test func prettyPrintedWithTabsAndNullsAndNesting() throws {
        let json = "{\n\t\"access_token\": \"at-9\",\n\t\"refresh_token\": null,\n\t\"expires_in\": \"60\",\n"
            + "\t\"scope\": [\"a\", \"b\"],\n\t\"ext\": {\"n\": 1.5e3, \"ok\": true}\n}\n"
        let token = try Self.token(json)
        #expect(token.accessToken.revealed == "at-9" && token.expiresIn == 60)
        #expect(token.rotatedRefreshToken == nil)
    }

    @Test func aLongTokenAndAMissingOrBadExpiry() throws {
        let long = String(repeating: "eyJhbGciOi", count: 800)
        let token = try Self.token(#"{"token_type":"Bearer","access_token":"\#(long)","expires_in":-5}"#)
        #expect(token.accessToken.revealed == long)
        #expect(token.expiresIn == OAuth2TokenResponse.defaultExpiresIn)
        #expect(try Self.token(#"{"access_token":"a","expires_in":"soon"}"#).expiresIn == OAuth2TokenResponse.defaultExpiresIn)
    }

    @Test func anErrorReplyWithEscapesAndAnArrayOfCodes() {
        let error = Self.failure(#"{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired\u002e\r\nTrace ID: x","error_codes":[70008],"error_uri":"https:\/\/login.microsoftonline.com\/error"}"#,
                                 status: 400)
        #expect(error?.description == "oauth2 token: https://e/t: HTTP 400 invalid_grant: AADSTS70008: The refresh token has expired.")
    }

    @Test func whatIsNotAJSONObject() {
        #expect(Self.failure(#"["access_token"]"#, status: 200)?.transport == "the reply has no access_token")
        #expect(Self.failure(#"{"access_token": null}"#, status: 200)?.transport == "the reply has no access_token")
        #expect(Self.failure(#"{"access_token":"a","access_token":"b"}"#, status: 200)?.transport == "the reply has no access_token")
        #expect(Self.failure(#"{"error":"x""#, status: 400)?.transport == "not an OAuth2 error reply")
        #expect(Self.failure("", status: 500)?.transport == "not an OAuth2 error reply")
        #expect(Self.failure(#"{"error": {"code": 1}}"#, status: 400)?.transport == "not an OAuth2 error reply")
        // Bytes that are not UTF-8 are not a reply.
        let bytes: [UInt8] = Array(#"{"access_token":""#.utf8) + [0xFF] + Array(#""}"#.utf8)
        guard case .failure(let error) = OAuth2TokenResponse.parse(status: 200, body: bytes, endpoint: "https://e/t") else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.transport == "the reply has no access_token")
    }
}
