#if canImport(Glibc)
import Glibc
#endif

/// The `Received:` trace header the relay prepends to every message it accepts
/// (RFC 5321 §4.4, RFC 5322 §3.6.7):
///
///     Received: from client.example ([127.0.0.1])
///     	by relay.example (smarthost) with ESMTP
///     	for <user@example.com>; Sat, 22 Nov 2025 21:40:21 +0000
///
/// The `for` clause is given only for a single recipient: with several, naming
/// one would leak the others' existence to each of them (§7.2).
public struct ReceivedHeader: Equatable, Sendable {
    /// The `with` protocol names (RFC 3848, RFC 6531 §3.7.3).
    public enum WithProtocol: String, Equatable, Sendable {
        case smtp = "SMTP"
        case esmtp = "ESMTP"
        case esmtps = "ESMTPS"
        case utf8smtp = "UTF8SMTP"
        case utf8smtps = "UTF8SMTPS"
    }

    public var heloName: String
    /// The client's IP address as text (`127.0.0.1`, `::1`).
    public var clientAddress: String
    public var hostname: String
    public var withProtocol: WithProtocol
    /// The recipient for the `for` clause; nil with several recipients.
    public var recipient: MailPath?
    /// An RFC 5322 date-time, see `rfc5322Date(unixSeconds:)`.
    public var date: String

    public init(heloName: String, clientAddress: String, hostname: String,
                withProtocol: WithProtocol, recipient: MailPath?, date: String) {
        self.heloName = heloName
        self.clientAddress = clientAddress
        self.hostname = hostname
        self.withProtocol = withProtocol
        self.recipient = recipient
        self.date = date
    }

    /// The header field, folded with CRLF TAB, ending in CRLF.
    public var bytes: [UInt8] {
        var text = "Received: from \(heloName) (\(Self.addressLiteral(clientAddress)))\r\n"
        text += "\tby \(hostname) (smarthost) with \(withProtocol.rawValue)"
        if let recipient {
            text += "\r\n\tfor \(recipient)"
        }
        text += "; \(date)\r\n"
        return Array(text.utf8)
    }

    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]`, as in an address literal (§4.1.3); a
    /// Unix-socket client has no address and is named by its uid (`uid=1001`), which the
    /// TCP-info comment of the `from` clause may hold as free text.
    static func addressLiteral(_ address: String) -> String {
        if address.hasPrefix("uid=") { return address }
        return address.contains(":") ? "[IPv6:\(address)]" : "[\(address)]"
    }

    private static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sat, 22 Nov 2025 21:40:21 +0000` (RFC 5322 §3.3) in UTC. Names are
    /// spelled here rather than by `strftime`, whose `%a`/`%b` follow the locale.
    public static func rfc5322Date(unixSeconds: Int) -> String {
        var seconds = time_t(unixSeconds)
        var fields = tm()
        guard gmtime_r(&seconds, &fields) != nil else {
            preconditionFailure("gmtime_r failed for \(unixSeconds)")
        }
        let day = Int(fields.tm_mday) < 10 ? "0\(fields.tm_mday)" : "\(fields.tm_mday)"
        return "\(dayNames[Int(fields.tm_wday)]), \(day) \(monthNames[Int(fields.tm_mon)]) \(1900 + Int(fields.tm_year)) "
            + "\(twoDigits(fields.tm_hour)):\(twoDigits(fields.tm_min)):\(twoDigits(fields.tm_sec)) +0000"
    }

    private static func twoDigits(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    /// The system clock in whole seconds since the epoch; the default clock of
    /// `InboundSession.Configuration`, replaced by a fixed one in tests.
    public static func currentUnixSeconds() -> Int {
        Int(time(nil))
    }
}
