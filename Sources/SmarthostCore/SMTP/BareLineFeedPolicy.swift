/// What a bare LF (an LF not preceded by CR) means on the inbound listener, in command
/// lines and in message content (`limits.bare_lf`).
///
/// RFC 5321 §2.3.8 allows only CRLF as a line end, but many local programs write LF-only
/// lines. Postfix 3.9 made `smtpd_forbid_bare_newline = normalize` its default: a bare LF
/// ends a line and is relayed as CRLF, while only `<CRLF>.<CRLF>` ends DATA, so a `\n.\n`
/// inside a body is content and nothing can be smuggled. `reject` is the strict rule this
/// relay had before: any bare LF is refused with `550 5.5.2`.
public enum BareLineFeedPolicy: String, Sendable, CaseIterable {
    case normalize
    case reject
}
