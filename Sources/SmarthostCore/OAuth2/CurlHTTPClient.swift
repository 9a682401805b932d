import CCurl
import CCurlShim

/// One HTTPS POST of a form, through libcurl, blocking: call it on a worker thread, never
/// on the loop. libcurl brings what a hand-written client would get wrong: proxies
/// (`HTTPS_PROXY`/`https_proxy`/`NO_PROXY` from the environment, CONNECT tunnels),
/// certificate and host name verification, timeouts.
struct CurlHTTPClient: Sendable {
    struct Response: Sendable, Equatable {
        var status: Int
        var body: [UInt8]
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
    /// Token replies are small; more than this is not a token endpoint.
    static let maxBodyBytes = 1 << 20

    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    func postForm(url: String, fields: [(String, String)]) throws(TransportError) -> Response {
        guard Self.globalInit, let handle = curl_easy_init() else {
            throw TransportError(code: -1, description: "libcurl could not be initialised")
        }
        defer { curl_easy_cleanup(handle) }
        let sink = BodySink()
        let context = Unmanaged.passUnretained(sink).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let body = Self.formEncode(fields)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            var setup = [
                shim_curl_easy_setopt_string(handle, CURLOPT_URL, url),
                shim_curl_easy_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, body),
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
            ]
            if let caFile { setup.append(shim_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile)) }
            if let failed = setup.first(where: { $0 != CURLE_OK }) { return failed }
            return curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            let text = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let reason = text.isEmpty ? String(cString: curl_easy_strerror(code)) : text
            throw TransportError(code: Int(code.rawValue), description: reason)
        }
        var status = 0
        _ = shim_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: sink.bytes)
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

/// Where libcurl's write callback puts the body; lives for one transfer.
private final class BodySink {
    var bytes: [UInt8] = []
}
