import Glibc
import Testing
@testable import SmarthostCore

/// Every background thread is started by `SystemThread`: named for `ps -L`/`top -H`, with
/// `pthread_create`'s result checked.
@Suite struct ReactorSystemThreadTests {
    /// The calling thread's name as the kernel keeps it.
    static func currentThreadName() -> String {
        let fd = open("/proc/thread-self/comm", O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return "" }
        return String(decoding: buffer[0..<count], as: UTF8.self).trimmingSuffix("\n")
    }

    @Test func aWorkerThreadRunsUnderItsName() {
        let worker = WorkerThread(name: "config-reload")
        let seen = NameBox()
        worker.submit { seen.set(Self.currentThreadName()) }
        worker.stop()
        #expect(seen.value == "config-reload")
    }

    @Test func aLongNameIsCutToWhatTheKernelKeeps() throws {
        let seen = NameBox()
        let thread = try SystemThread.start(name: "a-very-long-thread-name") { seen.set(Self.currentThreadName()) }
        thread.join()
        #expect(seen.value == "a-very-long-thr")
    }

    @Test func theSpoolAndLogThreadsAreNamed() throws {
        let names = Set(Self.threadNames())
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let spool = try Spool(root: directory.root, preallocatedFiles: 2)
        _ = try SpoolTestData.storeOK(spool, SpoolTestData.message())
        let now = Set(Self.threadNames())
        spool.shutdown()
        #expect(now.contains("spool-files"), "\(now.subtracting(names))")
        #expect(now.contains("spool-commit"), "\(now.subtracting(names))")
    }

    static func threadNames() -> [String] {
        guard let dir = opendir("/proc/self/task") else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(tid) != nil else { continue }
            let fd = open("/proc/self/task/\(tid)/comm", O_RDONLY)
            guard fd >= 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(fd, &buffer, buffer.count)
            close(fd)
            if count > 0 { names.append(String(decoding: buffer[0..<count], as: UTF8.self).trimmingSuffix("\n")) }
        }
        return names
    }
}

final class NameBox: @unchecked Sendable {
    private let lock = Mutex()
    private var name = ""
    func set(_ value: String) { lock.withLock { name = value } }
    var value: String { lock.withLock { name } }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
