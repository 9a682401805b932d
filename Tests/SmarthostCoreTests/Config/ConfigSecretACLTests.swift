import Foundation
import Glibc
import Testing
@testable import SmarthostCore

/// Issue 14, defect 9: a secret file with a POSIX ACL is judged by who its entries let read
/// it, not by the mode (whose group bits are then the mask). Real ACLs, set with setfacl.
@Suite struct ConfigSecretACLTests {
    static let needsACLs = ConditionTrait.enabled(if: aclsWork, "setfacl missing or no ACL support in the temp directory")

    private func routeYAML(_ path: String) -> String {
        "default:\n  host: smtp.example.com\n  port: 587\n  username: apikey\n  password_file: \(path)"
    }

    /// setfacl exists and the temp directory's file system keeps ACLs (tmpfs without
    /// CONFIG_TMPFS_POSIX_ACL does not): otherwise these tests are reported as not run.
    static let aclsWork: Bool = {
        let path = ConfigTestSupport.makeTempDirectory() + "/probe"
        ConfigTestSupport.writeFile(path, "", mode: 0o600)
        return run(["setfacl", "-m", "u:nobody:r", path]) == 0
    }()

    /// A private file in a fresh temp directory, with `acl` applied by setfacl.
    private func fileWithACL(_ acl: String, owner: uid_t? = nil) throws -> String {
        let path = ConfigTestSupport.makeTempDirectory() + "/pw"
        ConfigTestSupport.writeFile(path, "topsecret\n", mode: 0o600)
        if let owner { #expect(chown(path, owner, gid_t(owner)) == 0) }
        try #require(Self.run(["setfacl", "-m", acl, path]) == 0, "setfacl -m \(acl) \(path)")
        return path
    }

    /// The systemd layout on an ACL file system: the owner is another account and a
    /// `user:` entry grants the service read; the mode shows the mask (0440). Accepted.
    @Test(needsACLs, .enabled(if: geteuid() == 0, "giving the file to another account needs root"))
    func aFileTheACLLetsOnlyTheRelayReadIsAccepted() throws {
        let path = try fileWithACL("u:\(geteuid()):r", owner: 65534)
        #expect(Self.run(["chmod", "0440", path]) == 0)
        #expect(Self.run(["setfacl", "-m", "m::r", path]) == 0)
        let config = try ConfigTestSupport.parse(routeYAML(path))
        #expect(config.defaultRoute.password?.revealed == "topsecret")
    }

    @Test(needsACLs) func aUserTheACLLetsReadIsNamed() throws {
        let path = try fileWithACL("u:nobody:r")
        let issues = ConfigTestSupport.issues(routeYAML(path))
        #expect(issues.count == 1)
        #expect(issues.first?.message == "\(path): user:nobody has read access through an ACL; a secret file "
                + "must be readable by its owner and the relay only (setfacl -x user:nobody \(path))")
        #expect(issues.first?.message.contains("topsecret") == false)
    }

    @Test(needsACLs) func aGroupTheACLLetsReadIsNamed() throws {
        let path = try fileWithACL("g:nogroup:r")
        let issues = ConfigTestSupport.issues(routeYAML(path))
        #expect(issues.first?.message.hasPrefix("\(path): group:nogroup has read access through an ACL") == true,
                "\(issues)")
    }

    /// An entry the mask takes read from reads nothing; others' bits count as without an ACL.
    @Test(needsACLs) func theMaskLimitsEntriesAndOthersStillCount() throws {
        let masked = try fileWithACL("u:nobody:r,m::-")
        #expect(try ConfigTestSupport.parse(routeYAML(masked)).defaultRoute.password?.revealed == "topsecret")
        let others = try fileWithACL("u:\(geteuid()):r,o::r")
        #expect(ConfigTestSupport.issues(routeYAML(others)).first?.message
            .contains("is accessible by group or others (mode 0644)") == true)
    }

    /// The OAuth2 fetcher's key and refresh-token files go through the same check.
    @Test(needsACLs) func oauth2SecretFilesAreCheckedTheSameWay() throws {
        let path = try fileWithACL("u:nobody:r")
        guard case .failure(let error) = Secret.fromFile(path) else {
            Issue.record("a file nobody may read through an ACL was accepted")
            return
        }
        #expect(error == .readableThroughACL(path: path, entry: "user:nobody"))
    }

    @Test func theXattrFormatIsParsed() {
        // getfacl: user::rw- user:nobody:r-- group::r-- mask::r-- other::--- (from the kernel).
        let bytes: [UInt8] = [0x02, 0, 0, 0,
                              0x01, 0, 0x06, 0, 0xff, 0xff, 0xff, 0xff,
                              0x02, 0, 0x04, 0, 0xfe, 0xff, 0, 0,
                              0x04, 0, 0x04, 0, 0xff, 0xff, 0xff, 0xff,
                              0x10, 0, 0x04, 0, 0xff, 0xff, 0xff, 0xff,
                              0x20, 0, 0x00, 0, 0xff, 0xff, 0xff, 0xff]
        let acl = PosixACL(xattr: bytes)
        #expect(acl?.entries.count == 5)
        #expect(acl?.entries[1] == .init(tag: .user, permissions: 4, id: 65534))
        #expect(acl?.unwantedReader(owner: 0, user: 0, group: 0, owningGroup: 0) == .user(65534))
        #expect(acl?.unwantedReader(owner: 0, user: 65534, group: 0, owningGroup: 0) == nil)
        #expect(acl?.unwantedReader(owner: 0, user: 65534, group: 5, owningGroup: 0) == .group(0))
        #expect(PosixACL(xattr: [0x01, 0, 0, 0]) == nil, "version 1 is not understood")
        #expect(PosixACL(xattr: Array(bytes.dropLast())) == nil, "a torn entry")
    }

    private static func run(_ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
