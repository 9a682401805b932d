/// Why an upstream connection or message failed, as a value: what `smarthost test`
/// switches on to explain a failure, so nothing downstream reads `detail` to find out.
/// `UpstreamFailure.detail` says the same in words (logs, `last_error`); the policy still
/// decides from `step`, `reply` and `isPermanent`.
extension UpstreamFailure {
    public enum Reason: Sendable, Equatable {
        // MARK: Before SMTP

        /// The OAuth2 token endpoint gave no token.
        case tokenFailed(OAuth2TokenError)
        /// The upstream's name did not resolve (or has no address).
        case dnsFailed(ResolveError)
        /// Every address refused or timed out; one error per address tried, in order.
        case connectFailed([ConnectError])
        /// TLS could not start: context setup, the handshake or the certificate check
        /// (implicit TLS, or after STARTTLS). `TLSError.certificate` is a certificate the
        /// route does not trust.
        case tlsFailed(TLSError)
        /// The established TLS session broke (a bad record, an alert, close_notify).
        case tlsSessionFailed(TLSError)

        // MARK: Our own refusals (the server did nothing wrong by SMTP's rules)

        /// `tls: starttls` and the EHLO reply did not offer STARTTLS (RFC 3207): never a
        /// reason to carry on in plaintext.
        case starttlsNotOffered
        /// AUTH over an unencrypted connection, refused by our policy (product contract).
        case plaintextAuthRefused
        /// Credentials are configured but the server offers no mechanism we can use;
        /// `offered` is what it listed (empty: no AUTH at all).
        case authMechanismUnsupported(offered: [String])
        /// A recipient or the sender cannot be written in an SMTP command.
        case invalidEnvelope
        /// The message needs SMTPUTF8 (RFC 6531 §3.4) and the server does not offer it.
        case smtputf8NotOffered
        /// The message is larger than the server's announced SIZE (RFC 1870 §6).
        case messageTooLarge(limit: Int)

        // MARK: The dialogue

        /// The server said no in the failure's step; `failure.reply` is its answer.
        case rejected
        /// Every RCPT TO was refused; the reply is the last refusal.
        case noRecipientAccepted
        /// A reply when none was expected (while idle, or while fetching a token).
        case unexpectedReply
        /// Bytes that are not an SMTP reply (RFC 5321 §4.2).
        case malformedReply
        /// No answer in time, in this state of the session.
        case timeout(UpstreamSession.State)
        /// The peer closed the connection (or reading failed) in this state.
        case connectionClosed(UpstreamSession.State)
        /// The connection ended with a message in hand and no word from the session.
        case connectionLost
        /// We gave up the session mid-dialogue (`quit()` while not idle).
        case abandoned

        // MARK: Microsoft Graph (`Upstream/Graph/`, issue 22)

        /// Graph refused or failed this message (`isPermanent` for the
        /// `ErrorInvalidRecipients` class and 413; a 5xx or an unknown 400 is transient).
        case graphRejected(status: Int, code: String?)
        /// 429/503/504: too fast or busy; `UpstreamFailure.retryAfterMilliseconds` when said.
        case graphThrottled(status: Int, code: String?)
        /// 401 twice, 403, 404: the mailbox, its permissions or the token, not the message.
        case graphRouteRefused(status: Int, code: String?)
        /// No HTTP response: libcurl's words (DNS, connect, TLS, certificate, timeout).
        case graphTransportFailed(code: Int)
        /// The message is over Graph's single-request limit (`GraphRequest.maxRequestBytes`).
        case graphMessageTooLarge(limit: Int)
    }
}
