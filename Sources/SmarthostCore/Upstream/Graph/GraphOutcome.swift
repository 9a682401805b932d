/// What one Microsoft Graph `sendMail` exchange came to, as a value: the HTTP status, the
/// `Retry-After` and Graph's `error.code` / `error.message` in, a named outcome out, and
/// from that the seam's facts (`UpstreamSendResult`, `UpstreamFailure` with its reason).
/// Whether a fact means retry, dead letter or route down stays `DeliveryPolicy`'s; this
/// file only says which of Graph's answers is the message's problem and which the route's.
/// (https://learn.microsoft.com/graph/api/user-sendmail, .../graph/errors,
/// .../graph/throttling: 429 and 503/504 come with `Retry-After` in seconds.)
enum GraphOutcome: Sendable, Equatable {
    /// 202 Accepted: Graph has the message (it is in the mailbox's Sent Items).
    case accepted
    /// 401: the token was refused (expired, revoked, for another resource). The connection
    /// fetches a fresh one once; a second 401 is the route's problem.
    case tokenRefused(GraphError)
    /// 429, 503, 504: too fast, or Graph is busy. Deferred by `Retry-After` when given;
    /// the route slows down.
    case throttled(GraphError, retryAfterSeconds: Int?)
    /// 403 (no `Mail.Send`, an application access policy, send-as denied) and 404 (no such
    /// mailbox): nothing about this message; every message of the route would get the same.
    case routeRefused(GraphError)
    /// Graph refused this message for good: `ErrorInvalidRecipients`-class 400s, 413.
    case messageRejected(GraphError)
    /// Anything else (500, 502, a 400 we do not know to be the message's): worth another try.
    case failed(GraphError)

    /// The longest `Retry-After` honoured as given: beyond it Graph is not throttling a
    /// relay but down, and the ordinary retry schedule is the better judge.
    static let maxRetryAfterSeconds = 3600

    /// 400 codes that are the message's, not ours: a recipient Graph cannot resolve, MIME it
    /// cannot read, a message over the mailbox's size limit.
    static func isMessageCode(_ code: String?) -> Bool {
        guard let code else { return false }
        return code.hasPrefix("ErrorInvalidRecipients") || code.hasPrefix("ErrorMimeContent")
            || code == "ErrorMessageSizeExceeded" || code == "ErrorInvalidInternetMessageHeader"
            || code == "ErrorRecipientNotFound" || code == "ErrorMailRecipientNotFound"
    }

    static func classify(status: Int, retryAfter: String?, body: [UInt8]) -> GraphOutcome {
        let error = GraphError(status: status, body: body)
        switch status {
        case 200..<300: return .accepted
        case 401: return .tokenRefused(error)
        case 429, 503, 504: return .throttled(error, retryAfterSeconds: parseRetryAfter(retryAfter))
        case 403, 404: return .routeRefused(error)
        case 413: return .messageRejected(error)
        case 400 where isMessageCode(error.code): return .messageRejected(error)
        default: return .failed(error)
        }
    }

    /// RFC 9110 §10.2.3: delay-seconds, or an HTTP-date. Graph sends seconds; a date (or
    /// anything else) is taken as "not said", and the retry schedule decides.
    static func parseRetryAfter(_ text: String?) -> Int? {
        guard let text, !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let seconds = Int(text) else {
            return nil
        }
        return min(seconds, maxRetryAfterSeconds)
    }

    /// The seam's facts for a message sent to these recipients.
    func sendResult(recipients: [String]) -> UpstreamSendResult {
        switch self {
        case .accepted:
            let reply = SMTPReply(250, "2.0.0", "Graph sendMail: 202 Accepted")
            return .transaction(UpstreamDeliveryResult(
                accepted: recipients.map { UpstreamRecipientResult(recipient: $0, reply: reply) }, dataReply: reply))
        case .routeRefused, .tokenRefused:
            return .notSent(failure!)
        case .throttled, .messageRejected, .failed:
            return .transaction(UpstreamDeliveryResult(failure: failure))
        }
    }

    /// No HTTP answer. Before the request could have reached Graph (DNS, connect, TLS, the
    /// certificate, a proxy) the message was not sent; after it (a timeout, an answer cut
    /// off) Graph may have taken it, and a retry may duplicate it (RFC 1047's problem in HTTP).
    static func transportFailure(_ error: CurlHTTPClient.TransportError, url: String) -> UpstreamFailure {
        // CURLE_OPERATION_TIMEDOUT, CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_RECV_ERROR.
        let afterRequest = [28, 18, 52, 56].contains(error.code)
        return UpstreamFailure(step: afterRequest ? .dataEnd : .connect, detail: "Graph request to \(url) failed: \(error.description)",
                               mayHaveBeenDelivered: afterRequest, permanent: false,
                               reason: .graphTransportFailed(code: error.code))
    }

    /// nil for `.accepted`.
    var failure: UpstreamFailure? {
        switch self {
        case .accepted:
            return nil
        case .tokenRefused(let error):
            return UpstreamFailure(step: .auth, detail: "Graph refused the access token: \(error)", permanent: false,
                                   reason: .graphRouteRefused(status: error.status, code: error.code))
        case .throttled(let error, let seconds):
            var failure = UpstreamFailure(step: .data, detail: "Graph throttled: \(error)" + (seconds.map { "; Retry-After \($0)s" } ?? ""),
                                          permanent: false, reason: .graphThrottled(status: error.status, code: error.code))
            failure.retryAfterMilliseconds = seconds.map { Int64($0) * 1000 }
            return failure
        case .routeRefused(let error):
            return UpstreamFailure(step: .auth, detail: "Graph refused the mailbox: \(error)", permanent: false,
                                   reason: .graphRouteRefused(status: error.status, code: error.code))
        case .messageRejected(let error):
            return UpstreamFailure(step: .data, detail: "Graph refused the message: \(error)", permanent: true,
                                   reason: .graphRejected(status: error.status, code: error.code))
        case .failed(let error):
            return UpstreamFailure(step: .data, detail: "Graph failed: \(error)", permanent: false,
                                   reason: .graphRejected(status: error.status, code: error.code))
        }
    }
}

/// Graph's error as it reads in a log line: `HTTP 400 ErrorInvalidRecipients: At least one
/// recipient is not valid.` Graph's JSON (`{"error": {"code", "message"}}`) when there is
/// one, cleaned of control characters and bounded; never a header or the request.
struct GraphError: Sendable, Equatable, CustomStringConvertible {
    var status: Int
    var code: String?
    var message: String?

    init(status: Int, code: String? = nil, message: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
    }

    init(status: Int, body: [UInt8]) {
        self.status = status
        guard let error = JSONObject(bytes: body)?.object("error") else { return }
        code = error.string("code").map { Self.clean($0, limit: 80) }
        message = error.string("message").map { Self.clean($0, limit: 300) }
    }

    var description: String {
        var text = "HTTP \(status)"
        let phrase = GraphError.reasonPhrase(status)
        if !phrase.isEmpty { text += " " + phrase }
        if let code { text += " \(code)" }
        if let message { text += ": \(message)" }
        return text
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 202: "Accepted"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 413: "Payload Too Large"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }

    static func clean(_ text: String, limit: Int) -> String {
        String(String(text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? " " : Character($0) }).prefix(limit))
    }
}

extension JSONObject {
    /// A nested object (`error` in Graph's replies); nil when absent or not an object.
    func object(_ key: String) -> JSONObject? {
        guard let inner = mapping[key]?.mapping else { return nil }
        return JSONObject(mapping: inner)
    }

    init(mapping: Node.Mapping) {
        self.mapping = mapping
    }
}
