#if canImport(Glibc)
import Glibc
#endif

/// One trip to the token endpoint, start to finish, blocking: sign or read what the grant
/// needs, POST it through libcurl, read the reply, and keep a rotated refresh token.
/// Runs on the token worker thread only.
enum OAuth2TokenFetcher {
    /// A token endpoint that has not answered by then is down for this attempt.
    static let timeoutMilliseconds: Int64 = 30_000

    static func fetch(_ settings: OAuth2Settings) -> Result<OAuth2Token, OAuth2TokenError> {
        let endpoint = settings.tokenURL
        var refreshToken: String?
        if case .refreshToken(_, _, let file) = settings.grant {
            // Read at every fetch: the file is the one place the current token lives.
            switch Secret.fromFile(file) {
            case .success(let secret): refreshToken = secret.revealed
            case .failure(let error): return .failure(OAuth2TokenError(endpoint: endpoint, transport: error.description))
            }
        }
        let request: OAuth2TokenRequest
        do {
            request = try OAuth2TokenRequest.make(settings, now: Int(time(nil)), refreshToken: refreshToken)
        } catch {
            return .failure(OAuth2TokenError(endpoint: endpoint, transport: error.description))
        }
        let client = CurlHTTPClient(caFile: settings.caFile, timeoutMilliseconds: timeoutMilliseconds)
        let response: CurlHTTPClient.Response
        do {
            response = try client.postForm(url: request.url, fields: request.fields)
        } catch {
            return .failure(OAuth2TokenError(endpoint: endpoint, transport: error.description))
        }
        let result = OAuth2TokenResponse.parse(status: response.status, body: response.body, endpoint: endpoint)
        if case .success(let token) = result, case .refreshToken(_, _, let file) = settings.grant,
           let rotated = token.rotatedRefreshToken, rotated.revealed != refreshToken {
            if let problem = writeSecretAtomically(rotated.revealed + "\n", to: file) {
                // The new access token works now, but the next refresh would use a token
                // the endpoint may already have retired: say so loudly, in the reason.
                return .failure(OAuth2TokenError(endpoint: endpoint,
                                                 transport: "cannot write the rotated refresh token back to \(file): \(problem)"))
            }
        }
        return result
    }

    /// Temporary file (O_EXCL, 0600) beside the target, fsync, rename over it, fsync the
    /// directory: the file holds the old token or the new one, never half of either.
    /// Returns what went wrong, or nil.
    static func writeSecretAtomically(_ text: String, to path: String) -> String? {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "create \(temporary): \(String(cString: strerror(errno)))" }
        let bytes = Array(text.utf8)
        var offset = 0
        var failure: String?
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { failure = "write: \(String(cString: strerror(errno)))"; break }
            offset += written
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = "rename: \(String(cString: strerror(errno)))" }
        if let failure {
            unlink(temporary)
            return failure
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
        return nil
    }
}
