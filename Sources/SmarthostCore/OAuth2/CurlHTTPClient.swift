import CCurl
import CCurlShim

/// One HTTPS POST (a form for token endpoints, any body for mail APIs), through libcurl, blocking: call it on a worker thread, never
/// on the loop. libcurl brings what a hand-written client would get wrong: proxies
/// (`HTTPS_PROXY`/`https_proxy`/`NO_PROXY` from the environment, CONNECT tunnels),
/// certificate and host name verification, timeouts.
struct CurlHTTPClient: Sendable {
    struct Response: Sendable, Equatable {
        var status: Int
        var body: [UInt8]
        /// The final response's header fields, names lower-cased (RFC 9110 §5.1: they are
        /// case-insensitive), values trimmed; a header libcurl saw for an interim 1xx is gone.
        var headers: [(name: String, value: String)] = []

        static func == (a: Response, b: Response) -> Bool {
            a.status == b.status && a.body == b.body && a.headers.map { "\($0.name): \($0.value)" } == b.headers.map { "\($0.name): \($0.value)" }
        }

        /// The first value of a header field (name in lower case).
        func header(_ name: String) -> String? {
            headers.first { $0.name == name }?.value
        }
    }

    /// A transfer that got no HTTP response: DNS, connect, proxy, TLS, timeout. The text is
    /// libcurl's, which names the host and the cause.
    struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
        var code: Int
        var description: String
    }

    /// A PEM bundle to verify the endpoint with instead of the system store.
    var caFile: String?
    var timeoutMilliseconds: Int64
    /// Token replies and API error replies are small; more than this is not what we asked.
    static let maxBodyBytes = 1 << 20
    /// Header lines kept per response: a peer sending more is not an API we talk to.
    static let maxHeaderLines = 200

    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    func postForm(url: String, fields: [(String, String)]) throws(TransportError) -> Response {
        try post(url: url, headers: ["Content-Type: application/x-www-form-urlencoded"],
                 body: Array(Self.formEncode(fields).utf8))
    }

    /// POSTs `body` as it is with these request header lines (`Name: value`). The lines are
    /// the caller's to keep free of CR and LF; `body` is passed by pointer, not copied.
    func post(url: String, headers: [String], body: [UInt8]) throws(TransportError) -> Response {
        guard Self.globalInit, let handle = curl_easy_init() else {
            throw TransportError(code: -1, description: "libcurl could not be initialised")
        }
        defer { curl_easy_cleanup(handle) }
        var list: UnsafeMutablePointer<curl_slist>?
        // "Expect:" removes the 100-continue round trip libcurl adds to large POSTs.
        for line in headers + ["Expect:"] { list = curl_slist_append(list, line) }
        defer { curl_slist_free_all(list) }
        let sink = BodySink()
        let context = Unmanaged.passUnretained(sink).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            body.withUnsafeBufferPointer { bodyPointer in
                var setup = [
                    shim_curl_easy_setopt_string(handle, CURLOPT_URL, url),
                    shim_curl_easy_setopt_long(handle, CURLOPT_POST, 1),
                    shim_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)),
                    // Not copied: `body` outlives the transfer. An empty one has no address.
                    bodyPointer.baseAddress.map { shim_curl_easy_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: $0)) }
                        ?? shim_curl_easy_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, ""),
                    shim_curl_easy_setopt_pointer(handle, CURLOPT_HTTPHEADER, list),
                    shim_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1),   // no SIGALRM in a threaded daemon
                    shim_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeoutMilliseconds)),
                    shim_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(min(timeoutMilliseconds, 10_000))),
                    shim_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0),
                    shim_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1),
                    shim_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2),
                    shim_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "https"),
                    shim_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, "smarthost"),
                    shim_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress),
                    shim_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context),
                    shim_curl_easy_setopt_write_function(handle) { data, size, count, context in
                        let sink = Unmanaged<BodySink>.fromOpaque(context!).takeUnretainedValue()
                        let total = size * count
                        guard sink.bytes.count + total <= CurlHTTPClient.maxBodyBytes, let data else { return 0 }
                        data.withMemoryRebound(to: UInt8.self, capacity: total) {
                            sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: total))
                        }
                        return total
                    },
                    shim_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context),
                    shim_curl_easy_setopt_header_function(handle) { data, size, count, context in
                        let sink = Unmanaged<BodySink>.fromOpaque(context!).takeUnretainedValue()
                        let total = size * count
                        guard let data else { return 0 }
                        let line = data.withMemoryRebound(to: UInt8.self, capacity: total) {
                            Array(UnsafeBufferPointer(start: $0, count: total))
                        }
                        return sink.headerLine(line) ? total : 0
                    },
                ]
                if let caFile { setup.append(shim_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile)) }
                if let failed = setup.first(where: { $0 != CURLE_OK }) { return failed }
                return curl_easy_perform(handle)
            }
        }
        guard code == CURLE_OK else {
            let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let reason = text.isEmpty ? String(cString: curl_easy_strerror(code)) : text
            throw TransportError(code: Int(code.rawValue), description: reason)
        }
        var status = 0
        _ = shim_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: sink.bytes, headers: sink.headers)
    }

    /// `application/x-www-form-urlencoded` (WHATWG URL §5.2): unreserved bytes as they
    /// are, everything else percent-encoded, so a `+` or `&` in a secret survives.
    static func formEncode(_ fields: [(String, String)]) -> String {
        fields.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Where libcurl's write and header callbacks put the response; lives for one transfer.
private final class BodySink {
    var bytes: [UInt8] = []
    var headers: [(name: String, value: String)] = []

    /// One header line as libcurl hands it (CRLF included). A status line starts a new
    /// response (after a 1xx or a proxy's CONNECT reply): only the last one's fields count.
    /// Returns false to abort a transfer with too many lines.
    func headerLine(_ line: [UInt8]) -> Bool {
        if line.starts(with: Array("HTTP/".utf8)) {
            headers.removeAll()
            return true
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return true }
        guard headers.count < CurlHTTPClient.maxHeaderLines else { return false }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        let value = String(decoding: line[(colon + 1)...].filter { $0 != 13 && $0 != 10 }, as: UTF8.self)
        headers.append((name: name, value: value.trimmingCharacters(where: { $0 == " " || $0 == "\t" })))
        return true
    }
}
