/// The one request the metrics listener serves, as a pure value: `GET /metrics` (a query
/// string is ignored), or `HEAD`; anything else gets its status. Only the request line and
/// the end of the header section matter; headers are bounded, never interpreted.
public enum MetricsRequest: Sendable, Equatable {
    case metrics(headOnly: Bool)
    /// A complete request that is not for `/metrics`, or not a GET/HEAD.
    case refused(status: Int, reason: String)
    /// Not complete yet: read more.
    case incomplete

    /// A request line and headers longer than this get 431 and the connection closes.
    public static let maximumHeaderBytes = 8192

    public static func parse(_ bytes: [UInt8]) -> MetricsRequest {
        guard let end = headerEnd(bytes) else {
            return bytes.count > maximumHeaderBytes ? .refused(status: 431, reason: "Request Header Fields Too Large") : .incomplete
        }
        guard end <= maximumHeaderBytes else { return .refused(status: 431, reason: "Request Header Fields Too Large") }
        let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")) ?? bytes.firstIndex(of: UInt8(ascii: "\n")) ?? end
        let words = bytes[..<lineEnd].split(separator: UInt8(ascii: " "))
        guard words.count == 3, words[2].starts(with: Array("HTTP/1.".utf8)) else {
            return .refused(status: 400, reason: "Bad Request")
        }
        let method = String(decoding: words[0], as: UTF8.self)
        let target = words[1].prefix { $0 != UInt8(ascii: "?") }
        guard method == "GET" || method == "HEAD" else { return .refused(status: 405, reason: "Method Not Allowed") }
        guard target.elementsEqual(Array("/metrics".utf8)) else { return .refused(status: 404, reason: "Not Found") }
        return .metrics(headOnly: method == "HEAD")
    }

    /// Index just past the blank line that ends the header section (CRLF or bare LF lines).
    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                if index >= 1, bytes[index - 1] == UInt8(ascii: "\n") { return index + 1 }
                if index >= 2, bytes[index - 1] == UInt8(ascii: "\r"), bytes[index - 2] == UInt8(ascii: "\n") { return index + 1 }
            }
            index += 1
        }
        return nil
    }

    /// The whole response; `Connection: close`, so the body needs no framing beyond its length.
    public static func response(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8",
                                body: [UInt8], headOnly: Bool = false) -> [UInt8] {
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + "Connection: close\r\nCache-Control: no-store\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : body)
    }

    /// What Prometheus expects for the text format.
    public static let exposition = "text/plain; version=0.0.4; charset=utf-8"
}
