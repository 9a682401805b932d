/// The on-disk format of the spool. One message is one file, `queue/<id>`:
///
///     SMARTHOST-SPOOL 1 <id>\n            header, written by `begin()`
///     <content>                           message bytes as received: CRLF line ends,
///                                         dot-unstuffed, starting with Received:
///     key=value\n ...                     envelope record (see `SpoolEnvelope`)
///     END <clen> <elen> <ccrc> <ecrc>\n   trailer, exactly 48 bytes
///
/// The trailer carries the content length (16 hex digits), the envelope length and
/// the CRC-32C of the content and of the envelope (8 hex digits each). The content is
/// streamed before the envelope is known, so the envelope follows it, and the trailer
/// is found at a fixed distance from the end of the file. A file is valid only when
/// header, trailer and both checksums agree and the lengths add up to the file size
/// exactly; anything else (a write torn by a crash, a truncated copy, garbage) is
/// rejected, in the spirit of Postfix's end-of-message record and OpenSMTPD's
/// `queue_fs.c` refusing envelopes it cannot parse.
///
/// Record values are UTF-8 with `%`, control characters and DEL written as `%XX`, so a
/// value can never contain a raw newline or be mistaken for another record. Repeated
/// keys (`rcpt`, `done`) keep their order. Unknown keys are ignored on reading, so a
/// later version can add fields.
///
/// Delivery state lives beside the message in `queue/<id>.state`, a small record file
/// that is replaced atomically (write to `tmp/`, fsync, rename, fsync the directory):
///
///     SMARTHOST-STATE 1 <id>\n
///     attempts=<n>\n  next=<unix>\n  queued=<unix>\n  [error=...\n]
///     [done=<recipient>\n ...]  [failure=...\n  failed=<unix>\n]
///     END <crc>\n                         CRC-32C of everything before this line
///
/// So a retry never rewrites a 35 MiB message file. A missing state file means
/// "never tried". Dead letters keep the same two files under `failed/`.
enum SpoolFileFormat {
    static let trailerLength = 48

    static func header(_ id: SpoolID) -> [UInt8] {
        Array("SMARTHOST-SPOOL 1 \(id.rawValue)\n".utf8)
    }

    static func trailer(contentLength: Int, contentCRC: UInt32, envelope: [UInt8]) -> [UInt8] {
        let text = "END " + hex(UInt64(contentLength), digits: 16)
            + " " + hex(UInt64(envelope.count), digits: 8)
            + " " + hex(UInt64(contentCRC), digits: 8)
            + " " + hex(UInt64(SpoolCRC32C.checksum(envelope)), digits: 8) + "\n"
        return Array(text.utf8)
    }

    /// Where the parts of a message file are, once header and trailer have been checked.
    struct Layout {
        var contentOffset: Int
        var contentLength: Int
        var contentCRC: UInt32
        var envelope: [(String, String)]
    }

    /// Checks header, trailer, lengths and the envelope checksum; reads the envelope.
    /// Does not read the content: `readContent` / `verifyContent` check its CRC.
    static func layout(fd: Int32, id: SpoolID, path: String) throws(SpoolError) -> Layout {
        let size = try Syscall.fileSize(fd, path: path)
        let head = header(id)
        guard size >= head.count + trailerLength else { throw SpoolError.corrupt(id, reason: "truncated (\(size) bytes)") }
        guard try Syscall.read(fd, count: head.count, at: 0, path: path) == head else {
            throw SpoolError.corrupt(id, reason: "bad header")
        }
        guard let tail = try Syscall.read(fd, count: trailerLength, at: size - trailerLength, path: path),
              let fields = parseTrailer(tail) else { throw SpoolError.corrupt(id, reason: "missing or bad end marker") }
        let (contentLength, envelopeLength, contentCRC, envelopeCRC) = fields
        guard head.count + contentLength + envelopeLength + trailerLength == size else {
            throw SpoolError.corrupt(id, reason: "lengths in end marker do not match file size \(size)")
        }
        let offset = head.count + contentLength
        guard let block = try Syscall.read(fd, count: envelopeLength, at: offset, path: path),
              SpoolCRC32C.checksum(block) == envelopeCRC else { throw SpoolError.corrupt(id, reason: "envelope checksum mismatch") }
        guard let records = SpoolRecord.decode(block[...]) else { throw SpoolError.corrupt(id, reason: "malformed envelope record") }
        return Layout(contentOffset: head.count, contentLength: contentLength, contentCRC: contentCRC, envelope: records)
    }

    static func readContent(fd: Int32, id: SpoolID, layout: Layout, path: String) throws(SpoolError) -> [UInt8] {
        guard let content = try Syscall.read(fd, count: layout.contentLength, at: layout.contentOffset, path: path) else {
            throw SpoolError.corrupt(id, reason: "content shorter than its end marker says")
        }
        guard SpoolCRC32C.checksum(content) == layout.contentCRC else { throw SpoolError.corrupt(id, reason: "content checksum mismatch") }
        return content
    }

    /// Checks the content checksum reading 1 MiB at a time, so recovery of a large queue
    /// does not hold whole messages in memory.
    static func verifyContent(fd: Int32, id: SpoolID, layout: Layout, path: String) throws(SpoolError) {
        var crc = SpoolCRC32C()
        var offset = 0
        while offset < layout.contentLength {
            let count = min(1 << 20, layout.contentLength - offset)
            guard let chunk = try Syscall.read(fd, count: count, at: layout.contentOffset + offset, path: path) else {
                throw SpoolError.corrupt(id, reason: "content shorter than its end marker says")
            }
            crc.update(chunk)
            offset += count
        }
        guard crc.value == layout.contentCRC else { throw SpoolError.corrupt(id, reason: "content checksum mismatch") }
    }

    private static func parseTrailer(_ bytes: [UInt8]) -> (Int, Int, UInt32, UInt32)? {
        guard bytes.count == trailerLength, bytes.starts(with: Array("END ".utf8)), bytes.last == 0x0A,
              bytes[20] == 0x20, bytes[29] == 0x20, bytes[38] == 0x20,
              let contentLength = parseHex(bytes[4..<20]), let envelopeLength = parseHex(bytes[21..<29]),
              let contentCRC = parseHex(bytes[30..<38]), let envelopeCRC = parseHex(bytes[39..<47]),
              contentLength < UInt64(Int.max / 2) else { return nil }
        return (Int(contentLength), Int(envelopeLength), UInt32(contentCRC), UInt32(envelopeCRC))
    }

    // MARK: state sidecar

    static func stateHeader(_ id: SpoolID) -> [UInt8] {
        Array("SMARTHOST-STATE 1 \(id.rawValue)\n".utf8)
    }

    static func encodeState(_ id: SpoolID, records: [(String, String)]) -> [UInt8] {
        var out = stateHeader(id) + SpoolRecord.encode(records)
        out += Array("END \(hex(UInt64(SpoolCRC32C.checksum(out)), digits: 8))\n".utf8)
        return out
    }

    /// nil when the file is not a complete state file for this id.
    static func decodeState(_ id: SpoolID, _ bytes: [UInt8]) -> [(String, String)]? {
        let head = stateHeader(id)
        let endLength = 13  // "END " + 8 hex + "\n"
        guard bytes.count >= head.count + endLength, bytes.starts(with: head), bytes.last == 0x0A else { return nil }
        let bodyEnd = bytes.count - endLength
        guard bytes[bodyEnd..<bodyEnd + 4].elementsEqual("END ".utf8),
              let crc = parseHex(bytes[bodyEnd + 4..<bytes.count - 1]),
              SpoolCRC32C.checksum(bytes[..<bodyEnd]) == UInt32(crc) else { return nil }
        return SpoolRecord.decode(bytes[head.count..<bodyEnd])
    }

    // MARK: hex

    static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    static func parseHex(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            switch byte {
            case 0x30...0x39: value = value << 4 | UInt64(byte - 0x30)
            case 0x61...0x66: value = value << 4 | UInt64(byte - 0x61 + 10)
            default: return nil
            }
        }
        return value
    }
}

/// `key=value\n` records with `%XX` escaping; see `SpoolFileFormat`.
enum SpoolRecord {
    static func encode(_ records: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (key, value) in records {
            out += key.utf8
            out.append(UInt8(ascii: "="))
            escape(value, into: &out)
            out.append(0x0A)
        }
        return out
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> [(String, String)]? {
        guard bytes.isEmpty || bytes.last == 0x0A else { return nil }
        var records: [(String, String)] = []
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            guard let equals = line.firstIndex(of: UInt8(ascii: "=")), equals > line.startIndex,
                  line[..<equals].allSatisfy({ (0x61...0x7A).contains($0) }),
                  let value = unescape(line[(equals + 1)...]) else { return nil }
            records.append((String(decoding: line[..<equals], as: UTF8.self), value))
        }
        return records
    }

    static func escape(_ value: String, into out: inout [UInt8]) {
        for byte in value.utf8 {
            if byte == UInt8(ascii: "%") || byte < 0x20 || byte == 0x7F {
                out.append(UInt8(ascii: "%"))
                out += SpoolFileFormat.hex(UInt64(byte), digits: 2).uppercased().utf8
            } else {
                out.append(byte)
            }
        }
    }

    static func unescape(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte < 0x20 || byte == 0x7F { return nil }
            if byte != UInt8(ascii: "%") {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 3 <= bytes.endIndex,
                  let value = SpoolFileFormat.parseHex(ArraySlice(bytes[index + 1..<index + 3].map { $0 | 0x20 })) else { return nil }
            out.append(UInt8(value))
            index += 3
        }
        return String(validating: out, as: UTF8.self)
    }
}
