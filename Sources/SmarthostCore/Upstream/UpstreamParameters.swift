/// Inputs of one upstream connection. These are deliberately small values of their own:
/// the route configuration is mapped onto them, so the protocol code does not depend on
/// how the configuration file spells things.

/// How TLS is used with the upstream.
public enum UpstreamTLSMode: String, Sendable, Equatable, CaseIterable {
    /// RFC 3207 STARTTLS, required: a server that does not offer it is a failure, never
    /// a reason to carry on in plaintext.
    case starttls
    /// TLS from the first byte (port 465, RFC 8314 §3.3); the driver completes the
    /// handshake before it calls `connected()`.
    case implicit
    /// Plaintext.
    case none
}

/// A username and password for SMTP AUTH, or a username and an OAuth 2.0 access token
/// (`oauth` set; `password` then holds the token). Neither ever appears in any
/// description, debug description or mirror, so logging a value that contains
/// credentials cannot leak it.
public struct UpstreamCredentials: Sendable, Equatable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable {
    public var username: String
    public var password: String
    /// Bearer-token AUTH (XOAUTH2/OAUTHBEARER) instead of PLAIN/LOGIN.
    public var oauth: UpstreamOAuth?

    public init(username: String, password: String, oauth: UpstreamOAuth? = nil) {
        self.username = username
        self.password = password
        self.oauth = oauth
    }

    public var description: String { "\(username) (\(oauth == nil ? "password" : "token") ********)" }
    public var debugDescription: String { "UpstreamCredentials(username: \(username), \(oauth == nil ? "password" : "token"): ********)" }
    public var customMirror: Mirror {
        Mirror(self, children: ["username": username, "password": "********"])
    }
}

/// How a bearer token is presented: the preferred mechanism, and the server's name and
/// port for OAUTHBEARER's `host=`/`port=` (RFC 7628 §3.1).
public struct UpstreamOAuth: Sendable, Equatable {
    public var mechanism: UpstreamOAuthMechanism
    public var host: String
    public var port: UInt16

    public init(mechanism: UpstreamOAuthMechanism, host: String, port: UInt16) {
        self.mechanism = mechanism
        self.host = host
        self.port = port
    }
}

/// What the driver passes to `UpstreamSession.init`.
public struct UpstreamParameters: Sendable, Equatable {
    /// Our name in EHLO/HELO (the route's `domain`, else this machine's host name).
    public var ehloName: String
    public var tlsMode: UpstreamTLSMode
    /// nil: no AUTH.
    public var credentials: UpstreamCredentials?
    /// Permits AUTH without TLS; honoured only with `tlsMode == .none`.
    public var allowPlaintextAuth: Bool
    /// Keep a masked transcript of the dialogue (`smarthost test`); off in the daemon,
    /// where a long-lived connection would otherwise grow it without bound.
    public var recordTranscript: Bool

    public init(ehloName: String, tlsMode: UpstreamTLSMode, credentials: UpstreamCredentials? = nil,
                allowPlaintextAuth: Bool = false, recordTranscript: Bool = false) {
        self.ehloName = ehloName
        self.tlsMode = tlsMode
        self.credentials = credentials
        self.allowPlaintextAuth = allowPlaintextAuth
        self.recordTranscript = recordTranscript
    }
}

/// One message to hand to the upstream.
public struct UpstreamMessage: Sendable, Equatable {
    /// Envelope sender without angle brackets; "" is the null reverse-path.
    public var sender: String
    public var recipients: [String]
    /// The DATA payload as it goes on the wire: canonical CRLF, dot-stuffed and ending in
    /// CRLF "." CRLF, i.e. the output of `UpstreamDataEncoder.encode`.
    public var encodedData: [UInt8]
    /// Declared with SIZE= (RFC 1870 §3: an estimate is fine).
    public var size: Int
    /// The message has 8-bit content: send BODY=8BITMIME when offered (RFC 6152).
    public var needs8BitMIME: Bool
    /// The envelope or headers need SMTPUTF8 (RFC 6531): a server that does not offer
    /// it cannot take the message at all.
    public var needsSMTPUTF8: Bool

    public init(sender: String, recipients: [String], encodedData: [UInt8], size: Int? = nil,
                needs8BitMIME: Bool = false, needsSMTPUTF8: Bool = false) {
        precondition(!recipients.isEmpty, "a message needs at least one recipient")
        self.sender = sender
        self.recipients = recipients
        self.encodedData = encodedData
        self.size = size ?? encodedData.count
        self.needs8BitMIME = needs8BitMIME
        self.needsSMTPUTF8 = needsSMTPUTF8
    }

    /// Encodes `content` (the message as stored, after rewriting) for DATA.
    public init(sender: String, recipients: [String], content: [UInt8],
                needs8BitMIME: Bool = false, needsSMTPUTF8: Bool = false) {
        self.init(sender: sender, recipients: recipients,
                  encodedData: UpstreamDataEncoder.encode(content), size: content.count,
                  needs8BitMIME: needs8BitMIME, needsSMTPUTF8: needsSMTPUTF8)
    }
}

/// Which timer the session asks for while in a state. Every kind but `.idle` and `.none`
/// is the route's timeout (the longest wait for any one step); `.greeting` may be shorter
/// (`smarthost test`). The session turns the kind into `.armTimer(deadline:)`.
public enum UpstreamTimeoutKind: Sendable, Equatable {
    /// Fetching the token, resolving, or connecting to one address.
    case setup
    /// The TLS handshake (implicit, or after STARTTLS).
    case tlsHandshake
    /// Waiting for the 220 greeting.
    case greeting
    /// Waiting for a reply from the server.
    case reply
    /// Ready and unused: the owner decides how long to keep the connection (no timer).
    case idle
    /// Not started or closed: no timer.
    case none
}
