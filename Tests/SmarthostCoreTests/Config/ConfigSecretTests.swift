import Foundation
import Testing
@testable import SmarthostCore

@Suite struct ConfigSecretTests {
    private func routeYAML(_ passwordLine: String) -> String {
        "default:\n  host: smtp.example.com\n  port: 587\n  username: apikey\n  \(passwordLine)"
    }

    @Test func secretNeverPrintsItsValue() {
        let secret = Secret(revealed: "hunter2", origin: "inline")
        #expect(secret.description == "********")
        #expect(secret.debugDescription == "********")
        #expect("\(secret)" == "********")
        #expect(!String(describing: secret).contains("hunter2"))
        #expect(!String(reflecting: secret).contains("hunter2"))
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        let route = RouteSettings(host: "h", port: 25, tls: .none, domain: "d", username: "u", password: secret)
        #expect(!String(describing: route).contains("hunter2"))
        #expect(secret.revealed == "hunter2")
    }

    @Test func passwordFromEnvironment() throws {
        let config = try ConfigTestSupport.parse(routeYAML("password_env: SG_KEY"), environment: ["SG_KEY": "SG.abc"])
        #expect(config.defaultRoute.password?.revealed == "SG.abc")
        #expect(config.defaultRoute.password?.origin == "env SG_KEY")
    }

    /// An unset variable is a secret not provided yet (the relay holds that route's mail);
    /// an empty one is a mistake.
    @Test func missingOrEmptyEnvironmentVariableNamesTheKeyNotAValue() throws {
        let config = try ConfigTestSupport.parse(routeYAML("password_env: SG_KEY"), environment: ["OTHER": "SG.leak"])
        #expect(config.defaultRoute.password == nil)
        #expect(config.defaultRoute.missingCredential == "password_env: environment variable SG_KEY is not set")
        #expect(config.missingCredentials.map(\.route) == ["default"])
        let empty = ConfigTestSupport.issues(routeYAML("password_env: SG_KEY"), environment: ["SG_KEY": ""])
        #expect(empty.first?.message == "environment variable SG_KEY is empty")
    }

    /// `sudo smarthost check-config` outside systemd finds a key where the package keeps it:
    /// the credentials/ directory beside the config file.
    @Test func relativeFileIsFoundInTheCredentialsDirectoryBesideTheConfig() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/credentials", withIntermediateDirectories: true)
        ConfigTestSupport.writeFile(dir + "/credentials/sg.secret", "from-credentials\n", mode: 0o600)
        let config = try ConfigTestSupport.parse(routeYAML("password_file: sg.secret"), baseDirectory: dir)
        #expect(config.defaultRoute.password?.revealed == "from-credentials")
        ConfigTestSupport.writeFile(dir + "/sg.secret", "beside\n", mode: 0o600)
        #expect(try ConfigTestSupport.parse(routeYAML("password_file: sg.secret"), baseDirectory: dir)
            .defaultRoute.password?.revealed == "beside")
    }

    @Test func privateFileIsReadWithoutItsTrailingNewline() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/pw", "correct horse\n", mode: 0o600)
        ConfigTestSupport.writeFile(dir + "/pw-crlf", "battery\r\n", mode: 0o400)
        let config = try ConfigTestSupport.parse(routeYAML("password_file: \(dir)/pw"))
        #expect(config.defaultRoute.password?.revealed == "correct horse")
        #expect(config.defaultRoute.password?.origin == "file \(dir)/pw")
        let crlf = try ConfigTestSupport.parse(routeYAML("password_file: \(dir)/pw-crlf"))
        #expect(crlf.defaultRoute.password?.revealed == "battery")
        #expect(Secret.stripTrailingNewline("a\n\n") == "a\n")
        #expect(Secret.stripTrailingNewline("a") == "a")
    }

    @Test func groupOrWorldReadableFileIsRefused() {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/pw", "topsecret\n", mode: 0o644)
        let issues = ConfigTestSupport.issues(routeYAML("password_file: \(dir)/pw"))
        #expect(issues.count == 1)
        #expect(issues.first?.keyPath == "default.password_file")
        #expect(issues.first?.line == 5)
        #expect(issues.first?.message.contains("\(dir)/pw is accessible by group or others (mode 0644)") == true)
        #expect(issues.first?.message.contains("topsecret") == false)
        ConfigTestSupport.writeFile(dir + "/pw-group", "x", mode: 0o640)
        #expect(ConfigTestSupport.issues(routeYAML("password_file: \(dir)/pw-group")).count == 1)
    }

    /// A file that does not exist yet is a fresh install, not an error: the route is marked
    /// and its mail held. An empty, huge or non-regular file is an error.
    @Test func missingFileMarksTheRouteEmptyOrNonRegularFileIsAnError() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        let missing = try ConfigTestSupport.parse(routeYAML("password_file: \(dir)/absent"))
        #expect(missing.defaultRoute.missingCredential == "password_file \(dir)/absent: \(dir)/absent does not exist")
        let underSystemd = try ConfigTestSupport.parse(routeYAML("password_file: absent.secret"),
                                                       environment: ["CREDENTIALS_DIRECTORY": dir])
        #expect(underSystemd.defaultRoute.missingCredential?.contains("put it in /etc/smarthost/credentials/absent.secret") == true)
        ConfigTestSupport.writeFile(dir + "/empty", "\n", mode: 0o600)
        #expect(ConfigTestSupport.issues(routeYAML("password_file: \(dir)/empty")).first?.message.contains("is empty") == true)
        ConfigTestSupport.writeFile(dir + "/huge", String(repeating: "x", count: 70_000), mode: 0o600)
        #expect(ConfigTestSupport.issues(routeYAML("password_file: \(dir)/huge")).first?.message.contains("larger than 64 KiB") == true)
        try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir)
        #expect(ConfigTestSupport.issues(routeYAML("password_file: \(dir)")).first?.message.contains("not a regular file") == true)
    }

    @Test func relativeFileResolvesUnderCredentialsDirectory() throws {
        let credentials = ConfigTestSupport.makeTempDirectory()
        let configDir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(credentials + "/acme.secret", "from-credentials\n", mode: 0o400)
        ConfigTestSupport.writeFile(configDir + "/acme.secret", "from-config-dir\n", mode: 0o600)
        let yaml = routeYAML("password_file: acme.secret")
        let systemd = try ConfigTestSupport.parse(yaml, environment: ["CREDENTIALS_DIRECTORY": credentials],
                                                  baseDirectory: configDir)
        #expect(systemd.defaultRoute.password?.revealed == "from-credentials")
        let plain = try ConfigTestSupport.parse(yaml, baseDirectory: configDir)
        #expect(plain.defaultRoute.password?.revealed == "from-config-dir")
    }

    @Test func errorsNeverContainAnInlinePassword() {
        let yaml = routeYAML("password: Sup3rS3cret") + "\n  password_file: /x"
        let text = ConfigErrors(source: "t", issues: ConfigTestSupport.issues(yaml)).description
        #expect(text.contains("password given twice"))
        #expect(!text.contains("Sup3rS3cret"))
    }
}
