import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// The relay's reading of real files in a real maildrop: what `sendmail`'s writer leaves is
/// taken in with its owner's uid; links, FIFOs, forgeries and files too big are refused
/// without their content being read or the reader blocking.
@Suite struct MaildropIntakeTests {
    static let message = MaildropMessage(uid: geteuid(), sender: "a@example.com", recipients: ["b@example.com"],
                                         heloName: "host", droppedAt: 1, content: Array("Subject: x\r\n\r\ny\r\n".utf8))

    struct Drop {
        let spool = SpoolTestDirectory()
        var directory: String { Maildrop.directory(spool: spool.root) }

        init() throws {
            _ = try Spool(root: spool.root)
            #expect(Maildrop.prepare(spool: spool.root).allSatisfy { $0.contains("o+x") })
        }

        func intake(maxContent: Int = 1 << 20) -> MaildropIntake {
            MaildropIntake(directory: directory, maxFileSize: MaildropFormat.maxFileSize(maxContent: maxContent),
                           nowSeconds: WallClock.nowSeconds())
        }
    }

    @Test func whatSendmailWritesIsTakenInWithItsOwnersUID() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        #expect(drop.spool.mode("maildrop") == 0o3733)
        let name = try Maildrop.drop(Self.message, directory: drop.directory)
        #expect(drop.spool.names("maildrop") == [name], "no .tmp left behind")
        #expect(drop.spool.mode("maildrop/" + name) == 0o640)
        #expect(drop.intake().take(name) == .message(Self.message, uid: geteuid()))
    }

    @Test func aSymlinkToShadowIsRemovedUnread() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        let before = try Data(contentsOf: URL(fileURLWithPath: "/etc/hostname"))
        #expect(symlink("/etc/shadow", drop.directory + "/0123456789abcdef0123456789abcdef") == 0)
        #expect(drop.intake().take("0123456789abcdef0123456789abcdef") == .remove("a symbolic link (never followed)"))
        #expect(symlink("/etc/hostname", drop.directory + "/" + "." + String(repeating: "a", count: 32) + ".tmp") == 0)
        #expect(drop.intake().take("." + String(repeating: "a", count: 32) + ".tmp") == .remove("a symbolic link (never followed)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "/etc/hostname")) == before)
    }

    /// A FIFO would block a reader forever: refused on lstat, and O_NONBLOCK if it is
    /// swapped in after.
    @Test func aFIFOIsRemovedWithoutBlocking() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        #expect(mkfifo(drop.directory + "/fifo", 0o644) == 0)
        #expect(drop.intake().take("fifo") == .remove("not a regular file (FIFO, socket or device)"))
    }

    @Test func aHardLinkOfAnotherFileIsRemoved() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        let name = try Maildrop.drop(Self.message, directory: drop.directory)
        #expect(link(drop.directory + "/" + name, drop.directory + "/second") == 0)
        #expect(drop.intake().take("second") == .remove("a hard link (2 names)"))
    }

    @Test func forgedTruncatedAndOversizedFiles() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        let bytes = MaildropFormat.encode(Self.message)
        drop.spool.write("maildrop/torn", Array(bytes.dropLast(10)))
        #expect(drop.intake().take("torn") == .quarantine("missing or bad end marker"))
        var forged = bytes
        forged[bytes.count - 60] ^= 0x20
        drop.spool.write("maildrop/forged", forged)
        #expect(drop.intake().take("forged") == .quarantine("content checksum mismatch"))
        var big = Self.message
        big.content = [UInt8](repeating: 0x41, count: 2000)
        drop.spool.write("maildrop/big", MaildropFormat.encode(big))
        let bound = MaildropFormat.maxFileSize(maxContent: 100)
        let size = MaildropFormat.encode(big).count
        #expect(size <= bound, "within the envelope's room, the content limit is the session's to apply")
        #expect(drop.intake(maxContent: 100).take("big") == .message(big, uid: geteuid()))
        drop.spool.write("maildrop/huge", [UInt8](repeating: 0x41, count: bound + 1))
        #expect(drop.intake(maxContent: 100).take("huge") == .remove("oversized (\(bound + 1) bytes, at most \(bound))"))
    }

    /// The owner decides, and a file whose owner is not the uid it names was not written by
    /// sendmail as that user.
    @Test(.enabled(if: geteuid() == 0, "chown needs root"))
    func anOwnerOtherThanTheNamedUIDIsQuarantined() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        let name = try Maildrop.drop(Self.message, directory: drop.directory)
        #expect(chown(drop.directory + "/" + name, 65534, 65534) == 0)
        var intake = drop.intake()
        intake.uidMap = PeerUIDMap(uidMap: "0 0 4294967295")
        #expect(intake.take(name) == .quarantine("owned by uid 65534 but names uid 0"))
        // Where the namespace cannot tell who owns it, the uid is unknown (no uid rule
        // matches) rather than believed.
        intake.uidMap = PeerUIDMap(uidMap: "0 0 1\n998 998 1")
        #expect(intake.take(name) == .message(Self.message, uid: nil))
    }

    @Test func aQuarantinedDropKeepsItsReason() throws {
        let drop = try Drop()
        defer { drop.spool.remove() }
        drop.spool.write("maildrop/0123456789abcdef0123456789abcdef", Array("junk".utf8))
        let spool = try Spool(root: drop.spool.root)
        let target = try spool.quarantineDrop("0123456789abcdef0123456789abcdef", reason: "truncated (4 bytes)")
        #expect(target == "maildrop-0123456789abcdef0123456789abcdef")
        #expect(drop.spool.names("maildrop").isEmpty)
        let listed = try spool.quarantined()
        #expect(listed.map(\.name) == [target] && listed.first?.reason == "truncated (4 bytes)")
    }
}
