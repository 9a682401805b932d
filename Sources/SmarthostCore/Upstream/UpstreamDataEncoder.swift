/// Turns a stored message into the canonical DATA payload sent upstream
/// (RFC 5321 §2.3.8, §4.5.2), in one pass:
///
/// - every line ends in CRLF: a bare LF or a bare CR becomes CRLF, so no upstream can be
///   handed an ambiguous line end (the "SMTP smuggling" class of bugs lives there);
/// - NUL octets are dropped (RFC 5321 §4.5.2 forbids them in DATA);
/// - lines longer than 998 octets (not counting a stuffed dot) are split with CRLF
///   (RFC 5321 §4.5.3.1.6). The inbound
///   side already refuses such lines, so this only matters for messages made locally;
/// - dot-stuffing is applied last, to every line as sent, split lines included;
/// - the payload ends with exactly one CRLF "." CRLF, the line end added when the
///   message lacks one.
public enum UpstreamDataEncoder {
    /// Longest line in octets, without CRLF (RFC 5321 §4.5.3.1.6).
    public static let maxLineLength = 998

    public static func encode(_ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        // Room for the terminator and a little stuffing/CR growth without reallocating.
        out.reserveCapacity(content.count + content.count / 64 + 8)
        var lineLength = 0
        var previousWasCR = false
        content.withUnsafeBufferPointer { input in
            var index = 0
            while index < input.count {
                let byte = input[index]
                switch byte {
                case 0:
                    index += 1
                    continue  // dropped; a CR before it still pairs with an LF after it
                case 13:
                    endLine(&out, &lineLength)
                    previousWasCR = true
                    index += 1
                    continue
                case 10:
                    if !previousWasCR { endLine(&out, &lineLength) }   // CRLF already ended it
                    index += 1
                default:
                    if lineLength == maxLineLength { endLine(&out, &lineLength) }
                    if lineLength == 0 && byte == UInt8(ascii: ".") {
                        // Not counted: RFC 5321 §4.5.3.1.6 excludes the dot added for
                        // transparency, and counting it would split (corrupt) a legal
                        // 998-octet line that starts with a dot.
                        out.append(byte)
                    }
                    // Copy the run of ordinary octets at once (a byte-at-a-time append
                    // cost more than the rest of a large message's delivery path).
                    let limit = min(input.count, index + (maxLineLength - lineLength))
                    let end = OctetScan.firstLineBreakOrNUL(in: input, from: index + 1, to: limit)
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<end]))
                    lineLength += end - index
                    index = end
                }
                previousWasCR = false
            }
        }
        if lineLength > 0 { endLine(&out, &lineLength) }
        out.append(contentsOf: [UInt8(ascii: "."), 13, 10])
        return out
    }

    private static func endLine(_ out: inout [UInt8], _ lineLength: inout Int) {
        out.append(13)
        out.append(10)
        lineLength = 0
    }
}
