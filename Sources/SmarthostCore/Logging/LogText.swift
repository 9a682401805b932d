/// A value on its way into a log line or a journal field: the same classes as
/// `TerminalText.unsafeClass` (C0, DEL, C1, bidi) become visible escapes, because
/// `journalctl` and `less` show a record on an operator's terminal, and a raw `ESC` or
/// `U+202E` in an upstream's reply or a sender address would act there, or forge what a
/// line seems to say. Newline, CR and tab read as `\n`, `\r`, `\t`; the backslash is
/// doubled so an escape in the value cannot pass for one of ours.
enum LogText {
    static func escaped(_ value: String) -> String {
        guard needsEscaping(value) else { return value }
        var out = ""
        out.reserveCapacity(value.utf8.count + 8)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if let unsafe = TerminalText.unsafeClass(scalar) {
                    out += TerminalText.escape(scalar, unsafe)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Most values are plain ASCII words: checked on the bytes, no copy.
    static func needsEscaping(_ value: String) -> Bool {
        value.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") || $0 >= 0x80 }
            && value.unicodeScalars.contains { $0 == "\\" || TerminalText.unsafeClass($0) != nil }
    }
}
