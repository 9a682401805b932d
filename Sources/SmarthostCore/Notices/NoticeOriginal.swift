/// What of the original message a notice returns, as its third part (RFC 6522 §3), and the
/// bounds that keep a notice small whatever the original was.
///
/// A notice goes to an address nobody has checked (the envelope sender may be forged) and
/// to `copy_to`; a 2.7 MB header block once became a 2.7 MB notice. So, after Postfix's
/// `bounce_size_limit` (50 000 bytes; over it Postfix returns the header only):
/// - the whole message (`message/rfc822`) only when its body is at most `bodyLimit` and its
///   header at most `headerLimit`, and only to the sender alone: a copy for an operator
///   carries the header only, as Postfix's postmaster notices do;
/// - otherwise the header section alone (`text/rfc822-headers`), itself cut to at most
///   `headerLimit` at a line boundary, and the notice says how much was left out.
public enum NoticeOriginal: Sendable, Equatable {
    /// The whole message, CRLF line ends.
    case message([UInt8])
    /// The header section (CRLF lines, without the empty line); `omittedBytes` of the
    /// original's header were cut off the end.
    case headers([UInt8], omittedBytes: Int)

    public static let bodyLimit = 64 * 1024
    public static let headerLimit = 64 * 1024

    /// Decides from the stored message (already stripped of the org header).
    /// `withBody`: the notice may return the body at all (a failure notice to the sender).
    public static func choose(from message: [UInt8], withBody: Bool) -> NoticeOriginal {
        let header = DeliveryStatusNotice.headerSection(of: message)
        let bodyLength = max(0, message.count - header.count - 2)
        if withBody, header.count <= headerLimit, bodyLength <= bodyLimit {
            return .message(DeliveryStatusNotice.normalizedHeader(message))
        }
        let kept = truncatedHeader(header, limit: headerLimit)
        return .headers(kept, omittedBytes: header.count - kept.count)
    }

    /// The longest prefix of `header` of at most `limit` bytes that ends at a header
    /// field's end (the next line does not start with white space, RFC 5322 §2.2.3), else
    /// at a line's end inside a folded field; nothing when the first line alone is longer.
    static func truncatedHeader(_ header: [UInt8], limit: Int) -> [UInt8] {
        guard header.count > limit else { return header }
        var lineEnd: Int?
        var fieldEnd: Int?
        var index = 0
        while index < limit {
            if header[index] == 10 {
                let end = index + 1
                if end > limit { break }
                lineEnd = end
                let next = end < header.count ? header[end] : 0
                if next != 32 && next != 9 { fieldEnd = end }
            }
            index += 1
        }
        return Array(header[..<(fieldEnd ?? lineEnd ?? 0)])
    }

    var contentType: String {
        switch self {
        case .message: return "message/rfc822"
        case .headers: return "text/rfc822-headers"
        }
    }

    var bytes: [UInt8] {
        switch self {
        case .message(let message): return message
        case .headers(let header, _): return header.isEmpty ? [] : DeliveryStatusNotice.normalizedHeader(header)
        }
    }

    /// RFC 2046 §5.2.1: message/rfc822 may only be 7bit, 8bit or binary; say 8bit when it is.
    var transferEncoding: String? {
        guard case .message(let message) = self, message.contains(where: { $0 >= 0x80 }) else { return nil }
        return "8bit"
    }

    /// For the human-readable part: what is attached, and what was left out.
    var describedForHumans: [String] {
        switch self {
        case .message:
            return ["It is attached below, in full."]
        case .headers(let header, let omitted) where omitted > 0:
            return ["Its header is attached below; the body is not returned. The header was too large",
                    "for a notice: only its first \(header.count) bytes are included, \(omitted) bytes were left out."]
        case .headers:
            return ["Its header is attached below; the body is not returned."]
        }
    }
}
