/// One `sendMail` request as a value: the URL, the header lines and the body, made from
/// the message as the SMTP path would send it. Graph's MIME form is the RFC 5322 message
/// base64-encoded as a `text/plain` body (https://learn.microsoft.com/graph/api/user-sendmail,
/// "send a message in MIME format"); the sending mailbox is the URL's `users/{id}`.
struct GraphRequest: Sendable {
    /// Graph refuses a request body over 4 MB (`413`, "The maximum request length supported
    /// is 4MB"); base64 makes that 3 MiB of MIME. Larger messages need a draft and an
    /// attachment upload session, which this transport does not do: they are refused here,
    /// before any request, and the policy makes them dead letters naming the limit.
    static let maxRequestBytes = 4 * 1024 * 1024
    static var maxMessageBytes: Int { maxRequestBytes / 4 * 3 }
    /// `graph_url` when the route gives none; national clouds and tests override it.
    static let defaultURL = "https://graph.microsoft.com"

    var url: String
    /// Request header lines; the bearer token among them, so never shown as they are
    /// (`maskedHeaders` is what a transcript shows).
    var headers: [String]
    var body: [UInt8]
    /// The MIME message the body encodes (what Graph will send), for tests and the transcript size.
    var mime: [UInt8]

    /// `base`: the route's `graph_url` (no trailing slash needed).
    static func sendMail(base: String, mailbox: String, token: Secret, message: UpstreamMessage) -> Result<GraphRequest, UpstreamFailure> {
        let mime = mimeMessage(message)
        guard mime.count <= maxMessageBytes else {
            return .failure(UpstreamFailure(
                step: .data,
                detail: "message of \(mime.count) octets is over Microsoft Graph's single-request limit of 4 MB (\(maxMessageBytes) octets of MIME once base64-encoded); upload sessions are not supported",
                permanent: true, reason: .graphMessageTooLarge(limit: maxMessageBytes)))
        }
        return .success(GraphRequest(url: sendMailURL(base: base, mailbox: mailbox),
                                     headers: ["Authorization: Bearer " + token.revealed, "Content-Type: text/plain"],
                                     body: UpstreamBase64.encode(mime), mime: mime))
    }

    static func sendMailURL(base: String, mailbox: String) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/v1.0/users/\(CurlHTTPClient.percentEncode(mailbox))/sendMail"
    }

    /// What `smarthost test` shows of the request: the token masked.
    var maskedHeaders: [String] {
        headers.map { $0.hasPrefix("Authorization:") ? "Authorization: Bearer ********" : $0 }
    }

    /// The message Graph gets: the SMTP path's prepared message (org header removed, `From:`
    /// rule applied, canonical CRLF), its dot-stuffing undone, and `Bcc:` for the envelope
    /// recipients no `To:`/`Cc:`/`Bcc:` names — Graph sends to the header recipients only.
    static func mimeMessage(_ message: UpstreamMessage) -> [UInt8] {
        let content = unstuff(message.encodedData)
        return GraphRecipientHeaders.addingBcc(for: message.recipients, to: content)
    }

    /// The inverse of `UpstreamDataEncoder`'s last step: the terminating "." CRLF removed and
    /// one leading dot of every line (RFC 5321 §4.5.2). The rest of its work (CRLF, no NUL,
    /// line length) is what MIME wants too.
    static func unstuff(_ data: [UInt8]) -> [UInt8] {
        var end = data.count
        if data.count >= 3, data[(end - 3)...].elementsEqual([UInt8(ascii: "."), 13, 10]) { end -= 3 }
        var out: [UInt8] = []
        out.reserveCapacity(end)
        var atLineStart = true
        var index = 0
        while index < end {
            let byte = data[index]
            if atLineStart, byte == UInt8(ascii: ".") {
                index += 1
                atLineStart = false
                continue
            }
            out.append(byte)
            atLineStart = byte == 10
            index += 1
        }
        return out
    }
}
