import Foundation
import Testing
@testable import SmarthostCore

@Suite struct ConfigRelayConfigTests {
    @Test func minimalConfigGetsEveryDefault() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal)
        #expect(config.hostname == "relay.test")
        #expect(config.listen.map(\.description) == ["127.0.0.1:25", "[::1]:25"])
        #expect(config.spool == "/var/spool/smarthost")
        #expect(config.orgHeader == "X-Smarthost-Org")
        #expect(config.limits.maxMessageSize == 35 * 1024 * 1024)
        #expect(config.limits.maxRecipients == 100)
        #expect(config.limits.maxConnections == 1000)
        #expect(config.limits.idleTimeoutMs == 300_000)
        #expect(config.limits.dataTimeoutMs == 600_000)
        #expect(config.limits.minFreeSpace == 100 * 1024 * 1024)
        #expect(config.limits.bareLineFeed == .normalize)
        #expect(config.access.allow.map(\.description) == ["127.0.0.0/8", "::1/128"])
        #expect(config.queue.retryMinMs == 60_000)
        #expect(config.queue.retryMaxMs == 3_600_000)
        #expect(config.queue.maxAgeMs == 5 * 86_400_000)
        #expect(config.queue.connectionsPerRoute == 10)
        #expect(config.host == .useDefault)
        #expect(config.orgs.isEmpty)
    }

    @Test func defaultRouteDefaults() throws {
        let route = try ConfigTestSupport.parse(ConfigTestSupport.minimal).defaultRoute
        #expect(route.host == "smtp.example.com")
        #expect(route.port == 587)
        #expect(route.tls == .starttls)
        #expect(route.domain == "relay.test")
        #expect(route.timeoutMs == 180_000)
        #expect(route.username == nil && route.password == nil)
        #expect(route.rewriteFrom == .fill)
        #expect(route.allowPlaintextAuth == false)
    }

    @Test func systemHostnameIsTheDefault() throws {
        let config = try RelayConfig.parse(yaml: ConfigTestSupport.minimal, source: "t", baseDirectory: "/",
                                           environment: [:])
        #expect(config.hostname == RelayConfig.systemHostname())
        #expect(!config.hostname.isEmpty)
    }

    @Test func routeDomainDefaultsToTheConfiguredHostname() throws {
        let config = try ConfigTestSupport.parse("hostname: relay.example.internal\n" + ConfigTestSupport.minimal)
        #expect(config.defaultRoute.domain == "relay.example.internal")
    }

    @Test func limitsAndQueueWithUnits() throws {
        let config = try ConfigTestSupport.parse("""
            limits:
              max_message_size: 10MB
              max_recipients: 5
              max_connections: 20
              idle_timeout: 30
              data_timeout: 1500ms
              min_free_space: 512KiB
              bare_lf: reject
            queue:
              retry_min: 90s
              retry_max: 2h
              max_age: 1d
              connections_per_route: 3
            """ + "\n" + ConfigTestSupport.minimal)
        #expect(config.limits.maxMessageSize == 10_000_000)
        #expect(config.limits.maxRecipients == 5)
        #expect(config.limits.maxConnections == 20)
        #expect(config.limits.idleTimeoutMs == 30_000)  // a bare number is seconds here
        #expect(config.limits.dataTimeoutMs == 1_500)
        #expect(config.limits.minFreeSpace == 512 * 1024)
        #expect(config.limits.bareLineFeed == .reject)
        #expect(config.queue.retryMinMs == 90_000)
        #expect(config.queue.retryMaxMs == 7_200_000)
        #expect(config.queue.maxAgeMs == 86_400_000)
        #expect(config.queue.connectionsPerRoute == 3)
    }

    @Test func sizeUnits() {
        #expect(RelayConfig.Units.bytes("35MiB") == 36_700_160)
        #expect(RelayConfig.Units.bytes("10MB") == 10_000_000)
        #expect(RelayConfig.Units.bytes("512KiB") == 524_288)
        #expect(RelayConfig.Units.bytes("1GiB") == 1 << 30)
        #expect(RelayConfig.Units.bytes("2 kb") == 2_000)
        #expect(RelayConfig.Units.bytes("4096") == 4096)
        #expect(RelayConfig.Units.bytes("1_000") == 1000)
        #expect(RelayConfig.Units.bytes("10XB") == nil)
        #expect(RelayConfig.Units.bytes("MiB") == nil)
        #expect(RelayConfig.Units.bytes("-5") == nil)
        #expect(RelayConfig.Units.bytes("99999999999999GiB") == nil)
    }

    @Test func durationUnits() {
        let ms = { (text: String) in RelayConfig.Units.milliseconds(text, bareUnitMilliseconds: 1_000) }
        #expect(ms("500ms") == 500)
        #expect(ms("180s") == 180_000)
        #expect(ms("3m") == 180_000)
        #expect(ms("1h") == 3_600_000)
        #expect(ms("5d") == 432_000_000)
        #expect(ms("30") == 30_000)
        #expect(RelayConfig.Units.milliseconds("180000", bareUnitMilliseconds: 1) == 180_000)
        #expect(ms("5 minutes") == nil)
        #expect(ms("1.5h") == nil)
        #expect(ms("999999999999999d") == nil)
        #expect(RelayConfig.Units.formatMilliseconds(300_000) == "5m")
        #expect(RelayConfig.Units.formatMilliseconds(1_500) == "1500ms")
    }

    @Test func routeTimeoutBareNumberIsMilliseconds() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal + "\n  timeout: 2500")
        #expect(config.defaultRoute.timeoutMs == 2_500)
        let withUnit = try ConfigTestSupport.parse(ConfigTestSupport.minimal + "\n  timeout: 3m")
        #expect(withUnit.defaultRoute.timeoutMs == 180_000)
    }

    @Test(arguments: [
        ("tls: true\n  port: 587", TLSMode.starttls),
        ("tls: true\n  port: 465", TLSMode.implicit),
        ("tls: false\n  port: 25", TLSMode.none),
        ("tls: starttls\n  port: 25", TLSMode.starttls),
        ("tls: implicit\n  port: 2465", TLSMode.implicit),
        ("tls: none\n  port: 465", TLSMode.none),
        ("port: 465", TLSMode.implicit),
        ("port: 587", TLSMode.starttls),
    ])
    func tlsMapping(keys: String, expected: TLSMode) throws {
        let config = try ConfigTestSupport.parse("default:\n  host: mx.example.com\n  \(keys)")
        #expect(config.defaultRoute.tls == expected)
    }

    @Test func orgsKeepFileOrderAndUseChoices() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal + """

            host:
              use: custom
              host: smtp.office365.com
              port: 587
            orgs:
              zeta:
                use: default
                senders: ["*@zeta.example"]
              acme:
                host: smtp.gmail.com
                port: 465
              beta:
            """)
        #expect(config.orgs.map(\.id) == ["zeta", "acme", "beta"])
        #expect(config.orgs[0].route == .useDefault)
        #expect(config.orgs[0].senders == ["*@zeta.example"])
        guard case .custom(let acme) = config.orgs[1].route else {
            Issue.record("acme should be custom (route keys without use)")
            return
        }
        #expect(acme.tls == .implicit)
        #expect(config.orgs[2].route == .useDefault)
        guard case .custom(let host) = config.host else {
            Issue.record("host should be custom")
            return
        }
        #expect(host.endpoint == "smtp.office365.com:587")
    }

    @Test func routeOptionalFields() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/ca.pem", "-----BEGIN CERTIFICATE-----\n", mode: 0o644)
        let config = try ConfigTestSupport.parse("""
            default:
              host: "[2001:db8::25]"
              port: 25
              tls: none
              username: relay
              password: hunter2
              allow_plaintext_auth: true
              from: Admin.Mail+tag@Example.COM
              from_name: Ops Team
              rewrite_from: replace
              domain: mail.example.com
            host:
              use: custom
              host: 192.0.2.10
              port: 587
              ca_file: ca.pem
            """, baseDirectory: dir)
        let route = config.defaultRoute
        #expect(route.host == "2001:db8::25")
        #expect(route.endpoint == "[2001:db8::25]:25")
        #expect(route.password?.revealed == "hunter2")
        #expect(route.password?.origin == "inline")
        #expect(route.allowPlaintextAuth)
        #expect(route.from == "Admin.Mail+tag@Example.COM")
        #expect(route.fromName == "Ops Team")
        #expect(route.rewriteFrom == .replace)
        #expect(route.domain == "mail.example.com")
        guard case .custom(let host) = config.host else {
            Issue.record("host should be custom")
            return
        }
        #expect(host.caFile == dir + "/ca.pem")
    }

    @Test func listenAddresses() throws {
        let config = try ConfigTestSupport.parse("listen: [\"0.0.0.0:2525\", \"[::]:25\", \"[fe80::1:2]:587\"]\n"
            + ConfigTestSupport.minimal)
        #expect(config.listen == [
            ListenAddress(host: "0.0.0.0", port: 2525, isIPv6: false),
            ListenAddress(host: "::", port: 25, isIPv6: true),
            ListenAddress(host: "fe80::1:2", port: 587, isIPv6: true),
        ])
        #expect(config.listen[0].addressBytes == [0, 0, 0, 0])
        #expect(config.listen[1].addressBytes.count == 16)
    }

    @Test func loadReadsAFileAndNamesAMissingOne() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/relay.yaml", ConfigTestSupport.minimal + "\n  password_file: pw\n  username: u",
                                    mode: 0o644)
        ConfigTestSupport.writeFile(dir + "/pw", "s3cret\n", mode: 0o600)
        let config = try RelayConfig.load(path: dir + "/relay.yaml", environment: [:])
        #expect(config.defaultRoute.password?.revealed == "s3cret")  // relative to the config's directory

        #expect(throws: ConfigErrors.self) { try RelayConfig.load(path: dir + "/absent.yaml", environment: [:]) }
        do {
            _ = try RelayConfig.load(path: dir + "/absent.yaml", environment: [:])
        } catch {
            #expect(error.description.contains("absent.yaml"))
            #expect(error.description.contains("No such file"))
        }
    }

    // MARK: The shipped example files must always load.

    @Test func developerConfigLoads() throws {
        let path = ConfigTestSupport.repositoryConfigDirectory() + "/smarthost.yaml"
        let config = try RelayConfig.load(path: path, environment: [
            "SENDGRID_API_KEY": "placeholder", "ACME_SMTP_PASSWORD": "placeholder",
        ])
        #expect(config.listen == [ListenAddress(host: "127.0.0.1", port: 2525, isIPv6: false)])
        #expect(config.spool == "./var/spool")
        #expect(config.defaultRoute.endpoint == "smtp.sendgrid.net:587")
        #expect(config.defaultRoute.username == "apikey")
        #expect(config.host == .useDefault)
        #expect(config.orgs.contains { $0.route == .useDefault })
        #expect(config.orgs.contains { if case .custom = $0.route { true } else { false } })
    }

    /// Without its variables the developer config still loads (the relay runs and holds
    /// mail), with the two routes marked as missing their secret.
    @Test func developerConfigNeedsItsEnvironment() throws {
        let path = ConfigTestSupport.repositoryConfigDirectory() + "/smarthost.yaml"
        let config = try RelayConfig.load(path: path, environment: [:])
        #expect(config.missingCredentials.map(\.route) == ["default", "org acme"])
        #expect(config.missingCredentials.first?.problem == "password_env: environment variable SENDGRID_API_KEY is not set")
    }

    /// product.md §4 verbatim, with its /etc/smarthost secrets placed in a temp directory.
    @Test func productionExampleLoads() throws {
        let text = try String(contentsOfFile: ConfigTestSupport.repositoryConfigDirectory() + "/production.example.yaml",
                              encoding: .utf8)
        let dir = ConfigTestSupport.makeTempDirectory()
        ConfigTestSupport.writeFile(dir + "/host.secret", "host-pass\n", mode: 0o600)
        ConfigTestSupport.writeFile(dir + "/acme.secret", "acme-pass\n", mode: 0o400)
        let yaml = text.replacingOccurrences(of: "/etc/smarthost/", with: dir + "/")
        let config = try ConfigTestSupport.parse(yaml, environment: ["SENDGRID_API_KEY": "SG.x"])
        #expect(config.hostname == "relay.example.internal")
        #expect(config.orgs.map(\.id) == ["acme", "globex"])
        guard case .custom(let host) = config.host else {
            Issue.record("host should be custom")
            return
        }
        #expect(host.timeoutMs == 180_000)
        #expect(host.password?.revealed == "host-pass")
        guard case .custom(let acme)? = config.org("acme")?.route else {
            Issue.record("acme should be custom")
            return
        }
        #expect(acme.tls == .starttls)  // tls: true on port 587
    }
}
