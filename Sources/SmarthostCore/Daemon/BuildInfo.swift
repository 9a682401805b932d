import CBuildInfo
import COpenSSL

/// What `smarthost --version` prints: enough for a bug report from a fleet host — the
/// release, the commit it was built from, and the OpenSSL the binary actually loaded.
public enum BuildInfo {
    public static var version: String { String(cString: shim_build_version()) }
    public static var commit: String { String(cString: shim_build_commit()) }
    public static var openSSL: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }

    public static var summary: String {
        "smarthost \(version) (commit \(commit); \(openSSL))"
    }
}
