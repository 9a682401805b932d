/// Text from outside (a message header, an upstream's reply, a corrupt file) on its way to
/// an operator's terminal: control characters, escape sequences among them (`ESC ]0;…`
/// retitles a terminal, `U+009B` is an 8-bit CSI), and the Unicode bidi controls (`U+202E`
/// shows `exe.txt` for `txt.exe`, "Trojan Source", CVE-2021-42574) become visible escapes
/// instead of acting: `\x1b`, `\x9b`, `\u202e`.
///
/// `unsafeClass` is the one list of what must not pass as itself; each output kind has its
/// own escaping function over it: this one for terminals, `QueueReport.string` for JSON
/// (`\uXXXX`), `LogText.escaped` for log lines and journal fields.
public enum TerminalText {
    /// The classes of scalars that must never reach a terminal, a log or JSON as themselves.
    public enum UnsafeClass: Sendable, Equatable {
        /// U+0000–U+001F (ECMA-48 C0: ESC, BEL, CR, LF…).
        case c0
        /// U+007F.
        case delete
        /// U+0080–U+009F (ECMA-48 C1: CSI, OSC… which some terminals obey as 8-bit codes).
        case c1
        /// Unicode bidi controls (UAX #9 §2): LRE RLE PDF LRO RLO (U+202A–U+202E), LRI RLI
        /// FSI PDI (U+2066–U+2069), LRM RLM (U+200E, U+200F), ALM (U+061C).
        case bidi
    }

    public static func unsafeClass(_ scalar: Unicode.Scalar) -> UnsafeClass? {
        switch scalar.value {
        case 0x00...0x1F: return .c0
        case 0x7F: return .delete
        case 0x80...0x9F: return .c1
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: return .bidi
        default: return nil
        }
    }

    public static func escaped(_ text: String, keepNewlines: Bool = false, keepTabs: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if (keepNewlines && value == 0x0A) || (keepTabs && value == 0x09) {
                out.unicodeScalars.append(scalar)
            } else if let unsafe = unsafeClass(scalar) {
                out += escape(scalar, unsafe)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `\xNN` for the one-byte-wide controls, `\uNNNN` for bidi: shared with `LogText`.
    static func escape(_ scalar: Unicode.Scalar, _ unsafe: UnsafeClass) -> String {
        unsafe == .bidi ? "\\u" + hex(scalar.value, digits: 4) : "\\x" + hex(scalar.value, digits: 2)
    }

    static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
