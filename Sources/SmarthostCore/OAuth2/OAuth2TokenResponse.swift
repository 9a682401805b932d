/// A token the endpoint issued.
public struct OAuth2Token: Sendable, Equatable {
    public var accessToken: Secret
    /// Seconds the token is valid for, from the reply (3600 when it says nothing).
    public var expiresIn: Int
    /// A new refresh token the endpoint rotated to, when it sent one.
    var rotatedRefreshToken: Secret?
}

/// Why no token came: the endpoint's own words when it answered (RFC 6749 §5.2 `error`,
/// `error_description`; Microsoft puts an `AADSTS…` code in the description), else the
/// transport's. Holds no secret: endpoints do not echo them, and we never add one.
public struct OAuth2TokenError: Error, Sendable, Equatable, CustomStringConvertible {
    public var endpoint: String
    /// nil: no HTTP response (DNS, connect, proxy, TLS, timeout) or a local problem.
    public var httpStatus: Int?
    public var error: String?
    public var errorDescription: String?
    /// libcurl's reason, or a local one (a key that cannot sign, an unreadable refresh token).
    public var transport: String?

    public init(endpoint: String, httpStatus: Int? = nil, error: String? = nil, errorDescription: String? = nil,
                transport: String? = nil) {
        self.endpoint = endpoint
        self.httpStatus = httpStatus
        self.error = error
        self.errorDescription = errorDescription
        self.transport = transport
    }

    /// `AADSTS7000215` when Microsoft sent one.
    public var aadstsCode: String? {
        guard let text = errorDescription else { return nil }
        let characters = Array(text)
        let marker = Array("AADSTS")
        for start in characters.indices where characters[start...].starts(with: marker) {
            let digits = characters[(start + marker.count)...].prefix { $0.isNumber }
            if !digits.isEmpty { return "AADSTS" + String(digits) }
        }
        return nil
    }

    /// "oauth2 token: https://…/token: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided."
    public var description: String { "oauth2 token: " + detail }

    /// The description without its "oauth2 token: " prefix, where the step is already named.
    public var detail: String {
        var parts: [String] = []
        if let httpStatus { parts.append("HTTP \(httpStatus)") }
        if let error { parts.append(error) }
        var text = "\(endpoint): " + parts.joined(separator: " ")
        if let errorDescription { text += (parts.isEmpty ? "" : ": ") + errorDescription }
        if let transport { text += (parts.isEmpty && errorDescription == nil ? "" : ": ") + transport }
        return text
    }
}

enum OAuth2TokenResponse {
    static let defaultExpiresIn = 3600

    static func parse(status: Int, body: [UInt8], endpoint: String) -> Result<OAuth2Token, OAuth2TokenError> {
        // JSON, read by the YAML parser (see `JSONObject`); `expires_in` may come as a string.
        let reply = JSONObject(bytes: body)
        if status == 200, let reply, let token = reply.string("access_token"), !token.isEmpty {
            let lifetime = reply.integer("expires_in").flatMap { $0 > 0 ? $0 : nil } ?? defaultExpiresIn
            return .success(OAuth2Token(accessToken: Secret(revealed: token, origin: "token endpoint"),
                                        expiresIn: lifetime,
                                        rotatedRefreshToken: reply.string("refresh_token").flatMap {
                                            $0.isEmpty ? nil : Secret(revealed: $0, origin: "token endpoint")
                                        }))
        }
        var failure = OAuth2TokenError(endpoint: endpoint, httpStatus: status)
        if let reply, let error = reply.string("error") {
            failure.error = clean(error)
            failure.errorDescription = reply.string("error_description").map(firstLine).map(clean)
        } else if status == 200 {
            failure.transport = "the reply has no access_token"
        } else {
            failure.transport = "not an OAuth2 error reply"
        }
        return .failure(failure)
    }

    /// Entra ID appends "Trace ID: … Correlation ID: … Timestamp: …" lines; the first
    /// line is the message.
    private static func firstLine(_ text: String) -> String {
        String(text.split(whereSeparator: \.isNewline).first ?? "")
    }

    /// Into a log line: no control characters, bounded.
    private static func clean(_ text: String) -> String {
        String(String(text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? " " : Character($0) }).prefix(300))
    }
}
