/// A JSON object (a token endpoint's reply, a service-account key file) read by the YAML
/// parser: JSON is YAML 1.2's flow style, so libyaml reads it and the daemon needs no JSON
/// decoder of its own (nor Foundation's).
///
/// Two differences are bridged. JSON writes a character outside the BMP as a UTF-16
/// surrogate pair (`\ud83d\ude00`), which YAML refuses; `yamlEscapes` rewrites the pair as
/// YAML's `\U0001f600` first. And JSON's `null` is a plain scalar here, read as absent.
struct JSONObject {
    let mapping: Node.Mapping

    /// nil unless `bytes` is one JSON (or YAML) object.
    init?(bytes: [UInt8]) {
        guard let root = try? YAMLParser.compose(bytes: Self.yamlEscapes(bytes)), let mapping = root.mapping else {
            return nil
        }
        self.mapping = mapping
    }

    /// A string, number or boolean as its text; nil when absent, `null`, an object or an array.
    func string(_ key: String) -> String? {
        guard case .scalar(let scalar)? = mapping[key] else { return nil }
        if scalar.style == .plain && scalar.string == "null" { return nil }
        return scalar.string
    }

    /// A whole number, also when sent as a string (`"expires_in": "3599"`).
    func integer(_ key: String) -> Int? {
        string(key).flatMap { Int($0) }
    }

    /// JSON's surrogate-pair escapes as YAML's 32-bit escape; a lone surrogate becomes U+FFFD.
    /// Everything else is left as it is: outside strings, and every other escape.
    static func yamlEscapes(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(UInt8(ascii: "\\")) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var inString = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { inString.toggle() }
            guard inString, byte == UInt8(ascii: "\\"), index + 1 < bytes.count else {
                out.append(byte)
                index += 1
                continue
            }
            guard let unit = utf16Escape(bytes, at: index), (0xD800...0xDFFF).contains(unit) else {
                out.append(contentsOf: bytes[index...(index + 1)]) // `\"` must not end the string
                index += 2
                continue
            }
            if unit < 0xDC00, let low = utf16Escape(bytes, at: index + 6), (0xDC00...0xDFFF).contains(low) {
                let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                out.append(contentsOf: Array("\\U".utf8) + hex(scalar, digits: 8))
                index += 12
            } else {
                out.append(contentsOf: Array("\\uFFFD".utf8))
                index += 6
            }
        }
        return out
    }

    /// The code unit of a `\uXXXX` at `index`, if there is one.
    private static func utf16Escape(_ bytes: [UInt8], at index: Int) -> UInt32? {
        guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
            return nil
        }
        return UInt32(String(decoding: bytes[(index + 2)..<(index + 6)], as: UTF8.self), radix: 16)
    }

    private static func hex(_ value: UInt32, digits: Int) -> [UInt8] {
        let text = String(value, radix: 16)
        return Array((String(repeating: "0", count: max(0, digits - text.count)) + text).utf8)
    }
}
