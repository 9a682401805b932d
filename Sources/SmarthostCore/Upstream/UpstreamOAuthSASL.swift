/// The two SASL mechanisms that carry an OAuth 2.0 bearer token in SMTP AUTH, as initial
/// responses (RFC 4954 §4: the whole exchange in one AUTH line; tokens of 1-3 KB fit the
/// 12 288-octet limit of RFC 4954 §4).
public enum UpstreamOAuthMechanism: String, Sendable, Equatable, CaseIterable {
    /// Google's and Microsoft's `XOAUTH2`: `user=U ^A auth=Bearer T ^A ^A`.
    case xoauth2 = "XOAUTH2"
    /// RFC 7628 `OAUTHBEARER`: GS2 header `n,a=U,`, then `^A`-separated key=value pairs.
    case oauthbearer = "OAUTHBEARER"

    /// The other one, tried when the server does not offer the configured one.
    var alternative: UpstreamOAuthMechanism { self == .xoauth2 ? .oauthbearer : .xoauth2 }
}

enum UpstreamOAuthSASL {
    /// The client's initial response, base64 (RFC 4954 §4).
    static func initialResponse(_ mechanism: UpstreamOAuthMechanism, user: String, token: String,
                                host: String, port: UInt16) -> String {
        var payload: [UInt8]
        switch mechanism {
        case .xoauth2:
            payload = Array("user=\(user)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8)
        case .oauthbearer:
            // RFC 7628 §3.1: gs2-header "n,a=" saslname ","; "," and "=" in the name are
            // escaped as "=2C" and "=3D" (RFC 5801 §4). host/port are recommended (§3.1).
            let name = user.replacingEscapes()
            payload = Array("n,a=\(name),\u{1}host=\(host)\u{1}port=\(port)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8)
        }
        return UpstreamBase64.encodeString(payload)
    }

    /// What follows an error challenge (a `334` with a base64 JSON status): XOAUTH2 wants an
    /// empty line, OAUTHBEARER a lone `%x01` (RFC 7628 §3.2.3); the server then sends 535.
    static func errorAcknowledgement(_ mechanism: UpstreamOAuthMechanism) -> String {
        mechanism == .xoauth2 ? "" : UpstreamBase64.encodeString([1])
    }

    /// The JSON of an error challenge (RFC 7628 §3.2.2, `{"status":"invalid_token",…}`),
    /// printable, for the transcript and the failure; nil when it is not base64 text.
    static func decodeChallenge(_ text: String) -> String? {
        guard let bytes = base64Decode(text), !bytes.isEmpty else { return nil }
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return String(String(decoding: bytes, as: UTF8.self).prefix(300))
    }

    static func base64Decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="), UInt8(ascii: " "): continue
            default: return nil
            }
        }
        var out: [UInt8] = []
        var index = 0
        while index + 1 < values.count {
            let chunk = values[index..<min(index + 4, values.count)].map(UInt32.init)
            var group: UInt32 = 0
            for (offset, value) in chunk.enumerated() { group |= value << UInt32(18 - 6 * offset) }
            out.append(UInt8(group >> 16 & 0xFF))
            if chunk.count > 2 { out.append(UInt8(group >> 8 & 0xFF)) }
            if chunk.count > 3 { out.append(UInt8(group & 0xFF)) }
            index += 4
        }
        return out
    }
}

private extension String {
    /// RFC 5801 §4 saslname escaping.
    func replacingEscapes() -> String {
        var out = ""
        for character in self {
            switch character {
            case ",": out += "=2C"
            case "=": out += "=3D"
            default: out.append(character)
            }
        }
        return out
    }
}
