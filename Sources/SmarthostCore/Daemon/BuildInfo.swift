import CShim

/// What `smarthost --version` prints: enough for a bug report from a fleet host — the
/// release, the commit it was built from, and the OpenSSL the binary actually loaded.
public enum BuildInfo {
    public static var version: String { String(cString: shim_build_version()) }
    public static var commit: String { String(cString: shim_build_commit()) }
    public static var openSSL: String { String(cString: shim_openssl_version()) }

    public static var summary: String {
        "smarthost \(version) (commit \(commit); \(openSSL))"
    }
}

/// Keeps secrets out of core files and away from `ptrace` by other processes of the same
/// user once they are in memory (ssh-agent and gpg-agent do the same).
public enum ProcessHardening {
    @discardableResult
    public static func forbidCoreDumps() -> Bool {
        shim_set_not_dumpable() == 0
    }

    public static var isDumpable: Bool { shim_is_dumpable() == 1 }
}
