import Testing
@testable import SmarthostCore

/// Every validation rule: each error names its key path and line.
@Suite struct ConfigValidationTests {
    /// The one issue of a configuration that has exactly one problem.
    private func single(_ yaml: String, environment: [String: String] = [:]) -> ConfigIssue? {
        let issues = ConfigTestSupport.issues(yaml, environment: environment)
        #expect(issues.count == 1, "expected one issue, got \(issues)")
        return issues.first
    }

    private func expectIssue(
        _ yaml: String, line: Int, path: String, containing text: String,
        environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let issue = single(yaml, environment: environment) else {
            Issue.record("configuration loaded but should fail at \(path)", sourceLocation: sourceLocation)
            return
        }
        #expect(issue.line == line, "\(issue)", sourceLocation: sourceLocation)
        #expect(issue.keyPath == path, "\(issue)", sourceLocation: sourceLocation)
        #expect(issue.message.contains(text), "\(issue)", sourceLocation: sourceLocation)
    }

    @Test func badPortNamesKeyAndLine() {
        let yaml = ConfigTestSupport.minimal + """

            orgs:
              acme:
                use: custom
                host: smtp.acme.example
                port: 70000
            """
        expectIssue(yaml, line: 8, path: "orgs.acme.port", containing: "70000 is not a port (1-65535)")
        let issue = single(yaml)
        #expect(issue?.description == "line 8: orgs.acme.port: 70000 is not a port (1-65535)")
        expectIssue("default:\n  host: a.example\n  port: 0", line: 3, path: "default.port", containing: "not a port")
        expectIssue("default:\n  host: a.example\n  port: smtp", line: 3, path: "default.port", containing: "not a port")
    }

    @Test func unknownKeysAtEveryLevel() {
        expectIssue("colour: blue\n" + ConfigTestSupport.minimal, line: 1, path: "colour", containing: "unknown key")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  max_msg_size: 1MB", line: 5,
                    path: "limits.max_msg_size", containing: "did you mean max_message_size?")
        expectIssue(ConfigTestSupport.minimal + "\n  passwd: x", line: 4, path: "default.passwd", containing: "unknown key")
        expectIssue(ConfigTestSupport.minimal + "\n  use: custom", line: 4, path: "default.use", containing: "unknown key")
        expectIssue(ConfigTestSupport.minimal + "\nhost:\n  senders: [\"*@a.example\"]", line: 5,
                    path: "host.senders", containing: "unknown key")
        expectIssue(ConfigTestSupport.minimal + "\norgs:\n  acme:\n    use: default\n    sender: [x]", line: 7,
                    path: "orgs.acme.sender", containing: "did you mean senders?")
        expectIssue(ConfigTestSupport.minimal + "\nqueue:\n  retries: 3", line: 5, path: "queue.retries",
                    containing: "unknown key")
        expectIssue(ConfigTestSupport.minimal + "\naccess:\n  deny: []", line: 5, path: "access.deny",
                    containing: "unknown key")
    }

    @Test func missingRequiredKeys() {
        expectIssue("spool: /tmp/x", line: 1, path: "default", containing: "missing")
        expectIssue("default:\n  port: 587", line: 1, path: "default.host", containing: "missing")
        expectIssue("default:\n  host: a.example", line: 1, path: "default.port", containing: "missing")
        let org = ConfigTestSupport.minimal + "\norgs:\n  acme:\n    use: custom\n    port: 587"
        expectIssue(org, line: 5, path: "orgs.acme.host", containing: "required for a custom route")
        let host = ConfigTestSupport.minimal + "\nhost:\n  use: custom\n  host: smtp.example.net"
        expectIssue(host, line: 4, path: "host.port", containing: "required for a custom route")
    }

    @Test func passwordGivenTwice() {
        let yaml = """
            default:
              host: a.example
              port: 587
              username: u
              password: inline
              password_env: SMTP_PW
            """
        expectIssue(yaml, line: 6, path: "default.password_env", containing: "password given twice (also password at line 5)",
                    environment: ["SMTP_PW": "x"])
    }

    @Test func usernameAndPasswordNeedEachOther() {
        expectIssue(ConfigTestSupport.minimal + "\n  username: apikey", line: 4, path: "default.username",
                    containing: "without a password")
        expectIssue(ConfigTestSupport.minimal + "\n  password_env: PW", line: 4, path: "default.password_env",
                    containing: "needs a username", environment: ["PW": "x"])
    }

    @Test func fromMustBeAnAddress() {
        for bad in ["noreply", "Ops <ops@example.com>", "a@b", "@example.com", "a..b@example.com", "a@exa mple.com"] {
            expectIssue(ConfigTestSupport.minimal + "\n  from: \"\(bad)\"", line: 4, path: "default.from",
                        containing: "is not a mail address")
        }
        #expect(RelayConfig.Schema.isAddress("ops@[192.0.2.1]"))
        #expect(RelayConfig.Schema.isAddress("ops@[IPv6:2001:db8::1]"))
        #expect(RelayConfig.Schema.isAddress("jörg@example.com"))
    }

    @Test func fromNameMustNotInjectHeaders() {
        expectIssue(ConfigTestSupport.minimal + "\n  from_name: \"Ops\\r\\nBcc: x@evil.example\"", line: 4,
                    path: "default.from_name", containing: "line breaks")
    }

    @Test func badDurationsAndSizes() {
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  idle_timeout: 5 minutes", line: 5,
                    path: "limits.idle_timeout", containing: "not a duration")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  idle_timeout: 0s", line: 5,
                    path: "limits.idle_timeout", containing: "not a duration")
        expectIssue(ConfigTestSupport.minimal + "\n  timeout: 3 min", line: 4, path: "default.timeout",
                    containing: "a bare number is milliseconds")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  max_message_size: 35MiBs", line: 5,
                    path: "limits.max_message_size", containing: "not a size")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  max_recipients: 0", line: 5,
                    path: "limits.max_recipients", containing: "not a whole number")
        expectIssue(ConfigTestSupport.minimal + "\nqueue:\n  retry_min: 2h\n  retry_max: 1h", line: 6,
                    path: "queue.retry_max", containing: "shorter than retry_min")
        expectIssue(ConfigTestSupport.minimal + "\nqueue:\n  connections_per_route: 0", line: 5,
                    path: "queue.connections_per_route", containing: "not a whole number")
    }

    @Test func badCIDRAndListen() {
        expectIssue(ConfigTestSupport.minimal + "\naccess:\n  allow: [\"127.0.0.0/8\", \"10.0.0.0/33\"]", line: 5,
                    path: "access.allow[1]", containing: "bad prefix length (0-32)")
        expectIssue(ConfigTestSupport.minimal + "\naccess:\n  allow:\n    - 10.0.0.1/8", line: 6,
                    path: "access.allow[0]", containing: "did you mean 10.0.0.0/8?")
        expectIssue(ConfigTestSupport.minimal + "\naccess:\n  allow: localhost", line: 5,
                    path: "access.allow", containing: "expected a list")
        expectIssue("listen: [\"127.0.0.1:25\", \"localhost:25\"]\n" + ConfigTestSupport.minimal, line: 1,
                    path: "listen[1]", containing: "is not an address:port")
        expectIssue("listen: [\"::1:25\"]\n" + ConfigTestSupport.minimal, line: 1, path: "listen[0]",
                    containing: "is not an address:port")
    }

    @Test func enumsAndBooleans() {
        expectIssue(ConfigTestSupport.minimal + "\n  tls: ssl", line: 4, path: "default.tls", containing: "not one of")
        expectIssue(ConfigTestSupport.minimal + "\n  rewrite_from: always", line: 4, path: "default.rewrite_from",
                    containing: "not one of: fill, replace")
        expectIssue(ConfigTestSupport.minimal + "\nhost:\n  use: own", line: 5, path: "host.use",
                    containing: "not one of: default, custom")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  bare_lf: allow", line: 5, path: "limits.bare_lf",
                    containing: "not one of: normalize, reject")
        expectIssue(ConfigTestSupport.minimal + "\n  tls: none\n  allow_plaintext_auth: yes", line: 5,
                    path: "default.allow_plaintext_auth", containing: "not true or false")
    }

    @Test func plaintextAuthOnlyWithoutTLS() {
        expectIssue(ConfigTestSupport.minimal + "\n  allow_plaintext_auth: true", line: 4,
                    path: "default.allow_plaintext_auth", containing: "only allowed with tls: none")
        expectIssue(ConfigTestSupport.minimal + "\n  tls: none\n  username: u\n  password: p", line: 5,
                    path: "default.username", containing: "allow_plaintext_auth")
    }

    @Test func useDefaultRefusesRouteKeys() {
        expectIssue(ConfigTestSupport.minimal + "\norgs:\n  globex:\n    use: default\n    host: smtp.globex.example",
                    line: 7, path: "orgs.globex.host", containing: "only allowed with use: custom")
    }

    @Test func caFileRules() {
        expectIssue(ConfigTestSupport.minimal + "\n  ca_file: /nonexistent/ca.pem", line: 4, path: "default.ca_file",
                    containing: "cannot read /nonexistent/ca.pem")
        expectIssue(ConfigTestSupport.minimal + "\n  tls: none\n  ca_file: /etc/hostname", line: 5,
                    path: "default.ca_file", containing: "tls is none")
    }

    @Test func badNamesAndPatterns() {
        expectIssue("hostname: relay_host..example\n" + ConfigTestSupport.minimal, line: 1, path: "hostname",
                    containing: "not a host name")
        expectIssue("org_header: \"X Org\"\n" + ConfigTestSupport.minimal, line: 1, path: "org_header",
                    containing: "not a header field name")
        expectIssue("default:\n  host: smtp example.com\n  port: 25", line: 2, path: "default.host",
                    containing: "not a host name or IP address")
        expectIssue(ConfigTestSupport.minimal + "\norgs:\n  acme:\n    senders: [\"acme.example\"]", line: 6,
                    path: "orgs.acme.senders[0]", containing: "not a sender pattern")
        expectIssue(ConfigTestSupport.minimal + "\norgs:\n  \"a b\":\n    use: default", line: 5,
                    path: "orgs.a b", containing: "org id")
    }

    @Test func badDomainAndKeyShape() {
        expectIssue(ConfigTestSupport.minimal + "\n  domain: \"not a domain\"", line: 4, path: "default.domain",
                    containing: "not a domain name")
        expectIssue(ConfigTestSupport.minimal + "\nlimits: {[1, 2]: 3}", line: 4, path: "limits",
                    containing: "keys must be plain names")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  max_connections: -1", line: 5,
                    path: "limits.max_connections", containing: "not a whole number")
        expectIssue(ConfigTestSupport.minimal + "\nlimits:\n  min_free_space: 0", line: 5,
                    path: "limits.min_free_space", containing: "not a size")
    }

    @Test func wrongShapes() {
        expectIssue(ConfigTestSupport.minimal + "\nlimits: 5", line: 4, path: "limits", containing: "expected a mapping")
        expectIssue("- a\n- b", line: 1, path: "", containing: "expected a mapping")
        expectIssue(ConfigTestSupport.minimal + "\nspool:", line: 4, path: "spool", containing: "expected a value")
    }

    @Test func yamlSyntaxErrorHasALine() {
        let issue = single("default:\n  host: a.example\n  port: [587\nspool: x")
        #expect(issue?.line != nil)
        #expect(issue?.message.contains("YAML syntax error") == true)
        let duplicate = single(ConfigTestSupport.minimal + "\nspool: /a\nspool: /b")
        #expect(duplicate?.message.contains("duplicate key: spool") == true)
        #expect(duplicate?.line != nil)
    }

    @Test func allErrorsAreReportedAtOnceInLineOrder() {
        let yaml = """
            listen: ["nowhere:25"]
            limits:
              max_message_size: lots
            default:
              host: smtp.example.com
              port: 99999
              from: not-an-address
              password_file: /
              username: u
            orgs:
              acme:
                use: custom
                prot: 587
            """
        let issues = ConfigTestSupport.issues(yaml)
        let summary = issues.map { "\($0.line ?? 0) \($0.keyPath)" }
        #expect(summary == [
            "1 listen[0]", "3 limits.max_message_size", "6 default.port", "7 default.from",
            "8 default.password_file", "11 orgs.acme.host", "11 orgs.acme.port", "13 orgs.acme.prot",
        ])
        let text = ConfigErrors(source: "relay.yaml", issues: issues).description
        #expect(text.split(separator: "\n").count == 8)
        #expect(text.hasPrefix("relay.yaml: line 1: listen[0]: "))
    }
}
