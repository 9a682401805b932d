/// The addresses of an RFC 5322 address list (§3.4) — a `To:`/`Cc:`/`Bcc:` value or a
/// sendmail command-line argument: `Ann <ann@x>, "Doe, Bob" <bob@y> (work), team: c@z, d@z;`
/// gives `ann@x`, `bob@y`, `c@z`, `d@z`. Display names, comments and group names are
/// dropped; commas inside quotes, comments and angle brackets do not split. Folding
/// whitespace is read as space. Addresses are returned as written (no validation here).
public enum AddressList {
    public static func addresses(in text: String) -> [String] {
        var scanner = Scanner()
        for character in text.unicodeScalars { scanner.read(character) }
        scanner.endSegment()
        return scanner.addresses
    }

    private struct Scanner {
        var addresses: [String] = []
        /// The current segment outside comments, as written.
        var segment = ""
        /// What was inside the last `<…>` of the segment, if any.
        var angle: String?
        var inAngle = false
        var inQuote = false
        var escaped = false
        var commentDepth = 0

        mutating func read(_ c: Unicode.Scalar) {
            if escaped {
                escaped = false
                append(c)
                return
            }
            if commentDepth > 0 {
                if c == "\\" { escaped = true } else if c == "(" { commentDepth += 1 } else if c == ")" { commentDepth -= 1 }
                return
            }
            if inQuote {
                if c == "\\" { escaped = true } else if c == "\"" { inQuote = false }
                append(c)
                return
            }
            switch c {
            case "\"": inQuote = true; append(c)
            case "(": commentDepth = 1
            case "<": inAngle = true; angle = ""
            case ">" where inAngle: inAngle = false
            case "," where !inAngle, ";" where !inAngle: endSegment()
            case ":" where !inAngle:
                // A group's display name ("team:"): what came before is not an address.
                segment = ""
                angle = nil
            case "\r", "\n", "\t": append(" ")
            default: append(c)
            }
        }

        /// `<@relay.example:user@host>` (RFC 5322 §4.4 obs-route): the address is after the colon.
        static func strippingRoute(_ address: String) -> String {
            guard address.hasPrefix("@"), let colon = address.firstIndex(of: ":") else { return address }
            return String(address[address.index(after: colon)...])
        }

        mutating func append(_ c: Unicode.Scalar) {
            if inAngle { angle?.unicodeScalars.append(c) } else { segment.unicodeScalars.append(c) }
        }

        mutating func endSegment() {
            let address = Self.strippingRoute((angle ?? segment).trimmingCharacters(where: { $0 == " " }))
            if !address.isEmpty { addresses.append(address) }
            segment = ""
            angle = nil
            inAngle = false
        }
    }
}

extension String {
    /// Module-internal, so it never meets Foundation's `trimmingCharacters(in:)` in callers.
    func trimmingCharacters(where predicate: (Character) -> Bool) -> String {
        var slice = Substring(self)
        while let first = slice.first, predicate(first) { slice = slice.dropFirst() }
        while let last = slice.last, predicate(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
