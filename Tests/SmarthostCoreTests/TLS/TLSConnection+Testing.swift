// What only tests do with a TLSConnection: play the peer's part on a link in memory.
// Delivery never sends close_notify (SMTP has ended with QUIT) and never reads the SNI a
// server saw, so these live here rather than in SmarthostCore.
import COpenSSL
import COpenSSLShim
@testable import SmarthostCore

extension TLSConnection {
    /// Sends close_notify; the records are then in `drainCiphertext()`.
    func sendCloseNotify() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        _ = OpenSSLErrorQueue.drain()
    }

    /// The peer closed the TCP connection: reads now see EOF instead of waiting for more.
    func feedEndOfInput() {
        _ = shim_BIO_set_mem_eof_return(networkInput, 0)
    }

    /// The SNI name the client asked for (server side).
    var requestedServerName: String? {
        SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
    }
}
