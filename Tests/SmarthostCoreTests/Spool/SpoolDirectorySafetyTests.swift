import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// Issue 14, defect 7: a queue tool run as root must not write through a name someone else
/// planted in the spool, and the spool refuses directories others own or may write to.
@Suite struct SpoolDirectorySafetyTests {
    /// The old scratch name was `tmp/<id>.state.<pid>`, opened O_CREAT|O_TRUNC: a symlink
    /// planted there made `queue hold` overwrite whatever it pointed at.
    @Test func aSymlinkAtThePredictableScratchNameIsNotFollowed() throws {
        let scene = try PlantedLinkScene()
        defer { scene.remove() }
        let (directory, victim, spool, id) = (scene.directory, scene.victim, scene.spool, scene.id)
        let planted = "\(directory.root)/tmp/\(id).state.\(getpid())"
        #expect(symlink(victim.path, planted) == 0)

        let reply = DirectQueueControl(spool: spool).perform(.hold(id))

        #expect(reply.code == .ok, "\(reply.text)")
        #expect(victim.bytes() == VictimFile.content, "the planted symlink was followed")
        #expect(try spool.envelope(id).held)
        #expect(directory.names("tmp") == ["\(id).state.\(getpid())"], "the scratch file was renamed away")
        #expect(directory.mode("queue/\(id).state") == 0o600)
    }

    /// A name that exists already (a link, a file) is never opened: another random name is.
    @Test func anExistingScratchNameIsSkippedForAnotherRandomOne() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        let victim = try VictimFile()
        defer { victim.remove() }
        _ = try Spool(root: directory.root)
        let tmp = directory.root + "/tmp"
        #expect(symlink(victim.path, tmp + "/x.0000000000000001") == 0)
        let dirFD = open(tmp, O_RDONLY | O_DIRECTORY)
        defer { close(dirFD) }
        var suffixes: [UInt64] = [1, 0xabc]

        let (fd, name) = try Syscall.createExclusive(in: dirFD, directory: tmp, prefix: "x") {
            suffixes.removeFirst()
        }
        close(fd)

        #expect(name == "x.0000000000000abc")
        #expect(directory.mode("tmp/x.0000000000000abc") == 0o600)
        #expect(victim.bytes() == VictimFile.content)
    }

    @Test func randomScratchNamesDiffer() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        _ = try Spool(root: directory.root)
        let tmp = directory.root + "/tmp"
        let dirFD = open(tmp, O_RDONLY | O_DIRECTORY)
        defer { close(dirFD) }
        let first = try Syscall.createExclusive(in: dirFD, directory: tmp, prefix: "x")
        let second = try Syscall.createExclusive(in: dirFD, directory: tmp, prefix: "x")
        close(first.fd)
        close(second.fd)
        #expect(first.name != second.name)
        #expect(first.name.count == "x.".count + 16)
    }

    /// Reading follows no symlink either: a `.state` that is a link is an error, not a read
    /// of the file it names.
    @Test func aSymlinkedStateFileIsNotRead() throws {
        let scene = try PlantedLinkScene()
        defer { scene.remove() }
        let (directory, victim, spool, id) = (scene.directory, scene.victim, scene.spool, scene.id)
        #expect(symlink(victim.path, "\(directory.root)/queue/\(id).state") == 0)
        #expect(throws: SpoolError.io(operation: "open", path: "\(directory.root)/queue/\(id).state", errno: ELOOP)) {
            _ = try spool.envelope(id)
        }
    }

    @Test(arguments: ["", "/queue", "/tmp"])
    func aSpoolDirectoryOthersMayWriteIsRefused(_ sub: String) throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        _ = try Spool(root: directory.root)
        let path = directory.root + sub
        #expect(chmod(path, 0o777) == 0)

        let error = #expect(throws: SpoolError.self) { _ = try Spool(root: directory.root) }

        #expect(error == .unsafeDirectory(path: path, owner: geteuid(), mode: 0o777, user: geteuid()))
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("spool directory \(path) is owned by uid \(geteuid())"), "\(text)")
        #expect(text.contains("with mode 0777"), "\(text)")
        #expect(text.hasSuffix("Fix: chown \(geteuid()) \(path) && chmod 0700 \(path)"), "\(text)")
    }

    @Test(.enabled(if: geteuid() == 0, "chown to another account needs root"))
    func aSpoolDirectoryAnotherAccountOwnsIsRefused() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        _ = try Spool(root: directory.root)
        #expect(chown(directory.root + "/failed", 65534, 65534) == 0)

        let error = #expect(throws: SpoolError.self) { _ = try Spool(root: directory.root) }

        let path = directory.root + "/failed"
        #expect(error == .unsafeDirectory(path: path, owner: 65534, mode: 0o700, user: 0))
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("is owned by uid 65534"), "\(text)")
        #expect(text.contains("it must belong to uid 0"), "\(text)")
        #expect(text.hasSuffix("chown 0 \(path) && chmod 0700 \(path)"), "\(text)")
    }

    @Test func theSpoolLockRefusesARootOthersMayWrite() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        #expect(mkdir(directory.root, 0o700) == 0)
        #expect(chmod(directory.root, 0o1777) == 0)
        #expect(throws: SpoolLock.Failure.system(.unsafeDirectory(path: directory.root, owner: geteuid(),
                                                                   mode: 0o1777, user: geteuid()))) {
            _ = try SpoolLock.acquire(spool: directory.root)
        }
        #expect(directory.names("").isEmpty, "no lock file was made")
    }

    /// What the test spools, `make install`'s tmpfiles snippet and a plain `mkdir -p` give
    /// (0700, 0755) passes.
    @Test func aDirectoryOnlyWeMayWritePasses() throws {
        let directory = SpoolTestDirectory()
        defer { directory.remove() }
        #expect(mkdir(directory.root, 0o755) == 0)
        #expect(chmod(directory.root, 0o755) == 0)
        _ = try Spool(root: directory.root)
        #expect(directory.mode("") == 0o755)
        #expect(directory.mode("queue") == 0o700)
    }

    @Test func theFixQuotesAPathTheShellWouldSplit() {
        let error = SpoolError.unsafeDirectory(path: "/srv/my spool's", owner: 0, mode: 0o777, user: 0)
        #expect("\(error)".hasSuffix(#"chmod 0700 '/srv/my spool'\''s'"#))
    }
}

/// A file outside the spool that a planted link points at; it must keep its content.
private struct VictimFile {
    static let content = Array("precious\n".utf8)
    let directory: String
    var path: String { directory + "/victim" }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("victim-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(Self.content))
    }

    func bytes() -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A spool with one queued message, and a file outside it that a planted link could reach.
private struct PlantedLinkScene {
    let directory = SpoolTestDirectory()
    let victim: VictimFile
    let spool: Spool
    let id: SpoolID

    init() throws {
        victim = try VictimFile()
        spool = try Spool(root: directory.root)
        id = try SpoolTestData.storeOK(spool, SpoolTestData.message())
    }

    func remove() {
        victim.remove()
        directory.remove()
    }
}
