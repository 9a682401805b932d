/// What an operator should do about Graph's answers, for `smarthost test` and the probe's
/// failure line. Kept with the Graph transport (the SMTP providers' table is the diagnosis
/// table's); the words follow Microsoft's own setup pages: an app registration with the
/// `Mail.Send` application permission, admin consent, and an application access policy
/// (or RBAC for Applications) that limits the app to the sending mailbox.
enum GraphHints {
    static let permission = "the app registration needs the Microsoft Graph Mail.Send application permission (not delegated) and an administrator's consent for the tenant"
    static let accessPolicy = "an application access policy (New-ApplicationAccessPolicy -AccessRight RestrictAccess -PolicyScopeGroupId …) or an RBAC for Applications scope must include this mailbox"
    static let sendAs = "ErrorSendAsDenied: the From: address is not the mailbox in the URL and the mailbox has no Send As right for it; set the route's from (rewrite_from: replace) or grant Send As"
    static let mailbox = "no such mailbox in this tenant: username must be the sending mailbox's address (a licensed user or shared mailbox), and graph_url the tenant's cloud"
    static let token = "the access token was refused twice: check the oauth2 tenant and client_id, and that the scope is https://graph.microsoft.com/.default (not outlook.office365.com)"
    static let throttled = "Graph throttles per mailbox (4 concurrent requests, and a per-minute budget): the relay waits Retry-After and slows the route; lower connections: if this persists"
    static let tooLarge = "Graph takes at most 4 MB per sendMail request (about 3 MB of message); larger mail needs an SMTP route"

    /// One line for the transcript: `HTTP 403 Forbidden ErrorAccessDenied: Access is denied.`
    static func responseLine(_ response: CurlHTTPClient.Response, outcome: GraphOutcome) -> String {
        var line = GraphError(status: response.status, body: response.body).description
        if let retryAfter = response.header("retry-after") { line += " (Retry-After: \(GraphError.clean(retryAfter, limit: 40)))" }
        return line
    }

    static func hints(for outcome: GraphOutcome) -> [String] {
        switch outcome {
        case .accepted, .failed: return []
        case .tokenRefused: return []
        case .throttled: return [throttled]
        case .routeRefused(let error): return hints(for: error)
        case .messageRejected(let error): return error.status == 413 ? [tooLarge] : []
        }
    }

    static func hints(for error: GraphError) -> [String] {
        if error.code == "ErrorSendAsDenied" { return [sendAs] }
        if error.status == 404 || error.code == "ErrorInvalidUser" || error.code == "MailboxNotEnabledForRESTAPI" {
            return [mailbox]
        }
        return [permission, accessPolicy]
    }

    /// `smarthost test`'s explanation of a Graph failure; nil when it is not one.
    static func probeFailure(_ failure: UpstreamFailure) -> ProbeFailure? {
        let make = { (step: ProbeFailure.Step, hint: String?) in
            ProbeFailure(step: step, explanation: failure.summary, hint: hint, underlying: failure)
        }
        switch failure.reason {
        case .graphRouteRefused(let status, let code)?:
            if status == 401 { return make(.auth, token) }
            return make(.auth, hints(for: GraphError(status: status, code: code)).joined(separator: "; "))
        case .graphThrottled?: return make(.data, throttled)
        case .graphMessageTooLarge?: return make(.data, tooLarge)
        case .graphRejected(let status, _)?: return make(.data, status == 413 ? tooLarge : nil)
        case .graphTransportFailed(let code)?:
            // CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE: the certificate.
            if code == 60 || code == 77 { return make(.certificate, "graph_url's certificate is not trusted: set ca_file to the CA that signed it") }
            return make(.connect, nil)
        default: return nil
        }
    }
}
