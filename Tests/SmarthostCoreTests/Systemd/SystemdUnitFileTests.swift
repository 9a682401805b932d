import Foundation
import Testing

/// deploy/: `make install` into a staging prefix, the installed units verified by
/// `systemd-analyze verify`, the sysusers/tmpfiles snippets applied to a scratch root, the
/// service's hardening rated by `systemd-analyze security --offline=true`, and the example
/// config accepted by `check-config` with its credentials.
@Suite(.serialized) struct SystemdUnitFileTests {
    static let analyze = "/usr/bin/systemd-analyze"
    static var hasAnalyze: Bool { FileManager.default.isExecutableFile(atPath: analyze) }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `make install` with PREFIX and SYSCONFDIR inside a temp dir (no DESTDIR), so the
    /// installed units name an executable that exists and `verify` can check it.
    /// The man pages come from a release build (`make man`); stand-ins keep this test fast.
    static func install(into stage: URL) throws -> ToolRun {
        let man = stage.appendingPathComponent("man-source")
        try FileManager.default.createDirectory(at: man, withIntermediateDirectories: true)
        for page in ["smarthost.8", "smarthost.yaml.5"] {
            try ".Dd stand-in\n".write(toFile: man.appendingPathComponent(page).path, atomically: true, encoding: .utf8)
        }
        return try ToolRun.run("/usr/bin/make", ["-s", "-C", root.path, "install", "PREFIX=\(stage.path)/usr",
                                                 "SYSCONFDIR=\(stage.path)/etc", "BIN=\(RelayProcess.binaryPath)",
                                                 "MAN_DIR=\(man.path)"])
    }

    static func stage() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("smarthost-stage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func makeInstallPutsEachFileInPlaceAndKeepsAnExistingConfig() throws {
        let stage = try Self.stage()
        defer { try? FileManager.default.removeItem(at: stage) }
        let run = try Self.install(into: stage)
        try #require(run.status == 0, "make install: \(run.output)")
        let p = stage.path
        for (file, mode) in [("usr/bin/smarthost", 0o755), ("usr/lib/systemd/system/smarthost.service", 0o644),
                             ("usr/lib/systemd/system/smarthost.socket", 0o644), ("usr/lib/sysusers.d/smarthost.conf", 0o644),
                             ("usr/lib/tmpfiles.d/smarthost.conf", 0o644), ("etc/smarthost/smarthost.yaml.example", 0o640),
                             ("etc/smarthost/smarthost.yaml", 0o640), ("usr/share/man/man8/smarthost.8", 0o644),
                             ("usr/share/man/man5/smarthost.yaml.5", 0o644), ("etc/smarthost/credentials", 0o700)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(p)/\(file)")
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == mode, "\(file)")
        }
        let service = try String(contentsOfFile: "\(p)/usr/lib/systemd/system/smarthost.service", encoding: .utf8)
        #expect(service.contains("ExecStart=\(p)/usr/bin/smarthost serve --config \(p)/etc/smarthost/smarthost.yaml"))
        let directives = service.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(!directives.contains { $0.contains("/usr/local") }, "every path follows PREFIX")

        // A second install leaves the operator's config alone.
        try "# mine\n".write(toFile: "\(p)/etc/smarthost/smarthost.yaml", atomically: true, encoding: .utf8)
        #expect(try Self.install(into: stage).status == 0)
        #expect(try String(contentsOfFile: "\(p)/etc/smarthost/smarthost.yaml", encoding: .utf8) == "# mine\n")
    }

    @Test(.enabled(if: hasAnalyze, "systemd-analyze is not installed (apt-get install systemd)"))
    func installedUnitsPassSystemdAnalyzeVerify() throws {
        let stage = try Self.stage()
        defer { try? FileManager.default.removeItem(at: stage) }
        try #require(try Self.install(into: stage).status == 0)
        let units = stage.appendingPathComponent("usr/lib/systemd/system")
        // verify runs `man` for Documentation=: the pages just installed in the stage.
        let run = try ToolRun.run("/usr/bin/env", ["MANPATH=\(stage.path)/usr/share/man", Self.analyze, "verify",
                                                   units.appendingPathComponent("smarthost.service").path,
                                                   units.appendingPathComponent("smarthost.socket").path])
        #expect(run.status == 0 && run.output.isEmpty, "systemd-analyze verify: \(run.output)")
    }

    @Test(.enabled(if: hasAnalyze, "systemd-analyze is not installed (apt-get install systemd)"))
    func serviceHardeningRatesOkOrBetter() throws {
        let run = try ToolRun.run(Self.analyze, ["security", "--offline=true",
                                                 Self.root.appendingPathComponent("deploy/smarthost.service").path])
        let line = try #require(run.output.split(separator: "\n").first { $0.contains("Overall exposure level") })
        let words = line.split(separator: " ")
        let index = try #require(words.firstIndex { Double($0) != nil })
        let score = try #require(Double(words[index]))
        let label = words.count > index + 1 ? String(words[index + 1]) : ""
        #expect(["PERFECT", "SAFE", "OK"].contains(label), "exposure: \(line)")
        #expect(score <= 1.5, "the committed units rate 1.1; got \(score)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-sysusers"), "systemd-sysusers missing"))
    func sysusersAndTmpfilesSnippetsApplyToAScratchRoot() throws {
        let stage = try Self.stage()
        defer { try? FileManager.default.removeItem(at: stage) }
        // Placed inside the root as after an install (systemd 252 wants the full path).
        let deploy = Self.root.appendingPathComponent("deploy")
        for (source, directory) in [("smarthost.sysusers", "usr/lib/sysusers.d"), ("smarthost.tmpfiles", "usr/lib/tmpfiles.d")] {
            let target = stage.appendingPathComponent(directory)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: deploy.appendingPathComponent(source), to: target.appendingPathComponent("smarthost.conf"))
        }
        try FileManager.default.createDirectory(at: stage.appendingPathComponent("etc"), withIntermediateDirectories: true)
        let users = try ToolRun.run("/usr/bin/systemd-sysusers", ["--root=\(stage.path)", stage.path + "/usr/lib/sysusers.d/smarthost.conf"])
        #expect(users.status == 0, "\(users.output)")
        let passwd = try String(contentsOfFile: stage.appendingPathComponent("etc/passwd").path, encoding: .utf8)
        #expect(passwd.contains("smarthost:x:") && passwd.contains(":/var/lib/smarthost:/usr/sbin/nologin"))
        let files = try ToolRun.run("/usr/bin/systemd-tmpfiles", ["--root=\(stage.path)", "--create", stage.path + "/usr/lib/tmpfiles.d/smarthost.conf"])
        #expect(files.status == 0, "\(files.output)")
        let spool = try FileManager.default.attributesOfItem(atPath: stage.appendingPathComponent("var/lib/smarthost/spool").path)
        // o+x (no r): sendmail run by any user reaches the maildrop below, and lists nothing.
        #expect((spool[.posixPermissions] as? NSNumber)?.intValue == 0o711)
        let maildrop = try FileManager.default.attributesOfItem(atPath: stage.appendingPathComponent("var/lib/smarthost/spool/maildrop").path)
        #expect((maildrop[.posixPermissions] as? NSNumber)?.intValue == 0o3733)
    }

    /// The example config the units expect passes `check-config` once its credentials exist.
    @Test func exampleConfigChecksWithCredentials() throws {
        let credentials = try Self.stage()
        defer { try? FileManager.default.removeItem(at: credentials) }
        for name in ["sendgrid.secret", "acme.secret"] {
            let path = credentials.appendingPathComponent(name).path
            try "placeholder-\(name)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o600)
        }
        let example = Self.root.appendingPathComponent("deploy/smarthost.yaml.example").path
        let script = "CREDENTIALS_DIRECTORY='\(credentials.path)' exec '\(RelayProcess.binaryPath)' check-config --config '\(example)'"
        let run = try ToolRun.run("/bin/sh", ["-c", script])
        #expect(run.status == 0, "\(run.output)")
        #expect(!run.output.contains("placeholder-"), "check-config masks secrets")
    }

    /// A fresh install: the example config names secrets nobody has provided yet. The relay
    /// must still start (ExecStartPre runs this), so it is a warning, and `--strict` refuses.
    @Test func exampleConfigChecksWithoutCredentialsWithAWarning() throws {
        let credentials = try Self.stage()
        defer { try? FileManager.default.removeItem(at: credentials) }
        let example = Self.root.appendingPathComponent("deploy/smarthost.yaml.example").path
        let base = "CREDENTIALS_DIRECTORY='\(credentials.path)' exec '\(RelayProcess.binaryPath)' check-config --config '\(example)'"
        let run = try ToolRun.run("/bin/sh", ["-c", base + " --quiet"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("warning: default route: password_file sendgrid.secret"), "\(run.output)")
        #expect(run.output.contains("/etc/smarthost/credentials/sendgrid.secret"), "says where to put it: \(run.output)")
        let strict = try ToolRun.run("/bin/sh", ["-c", base + " --strict"])
        #expect(strict.status == 1, "\(strict.output)")
    }

    /// The unit loads the whole credentials directory; systemd names each file
    /// `smarthost_<file>`, which a relative password_file finds.
    @Test func passwordFileFindsADirectoryLoadedCredential() throws {
        let credentials = try Self.stage()
        defer { try? FileManager.default.removeItem(at: credentials) }
        for name in ["smarthost_sendgrid.secret", "smarthost_acme.secret"] {
            let path = credentials.appendingPathComponent(name).path
            try "placeholder-\(name)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o440)   // systemd's credential files on a file system with ACLs
        }
        let example = Self.root.appendingPathComponent("deploy/smarthost.yaml.example").path
        let script = "CREDENTIALS_DIRECTORY='\(credentials.path)' exec '\(RelayProcess.binaryPath)' check-config --strict --config '\(example)'"
        let run = try ToolRun.run("/bin/sh", ["-c", script])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("smarthost_sendgrid.secret"), "\(run.output)")
        let service = try String(contentsOfFile: Self.root.appendingPathComponent("deploy/smarthost.service").path, encoding: .utf8)
        #expect(service.contains("\nLoadCredential=smarthost:/etc/smarthost/credentials\n"))
    }
}
