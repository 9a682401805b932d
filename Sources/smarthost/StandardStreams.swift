import Glibc

/// Glibc's `stderr` is a mutable global, which Swift 6 will not touch unguarded.
nonisolated(unsafe) let stderrStream: UnsafeMutablePointer<FILE> = Glibc.stderr
