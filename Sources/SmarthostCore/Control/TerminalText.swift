/// Text from outside (a message header, an upstream's reply, a corrupt file) on its way to
/// an operator's terminal: control characters, escape sequences among them (`ESC ]0;…`
/// retitles a terminal), become visible `\xNN` instead of acting.
public enum TerminalText {
    public static func escaped(_ text: String, keepNewlines: Bool = false, keepTabs: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if (keepNewlines && value == 0x0A) || (keepTabs && value == 0x09) {
                out.unicodeScalars.append(scalar)
            } else if value < 0x20 || value == 0x7F || (0x80...0x9F).contains(value) {
                out += "\\x" + hex(UInt8(value & 0xFF))
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
