import CLinuxShim

/// Keeps secrets out of core files and away from `ptrace` by other processes of the same
/// user once they are in memory (ssh-agent and gpg-agent do the same): PR_SET_DUMPABLE 0.
public enum ProcessHardening {
    @discardableResult
    public static func forbidCoreDumps() -> Bool {
        shim_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    }

    public static var isDumpable: Bool { shim_prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}
