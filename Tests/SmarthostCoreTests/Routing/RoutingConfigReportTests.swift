import Testing
@testable import SmarthostCore

@Suite struct RoutingConfigReportTests {
    private let yaml = """
        hostname: relay.example.internal
        listen: ["127.0.0.1:2525"]
        spool: /var/spool/test
        default:
          host: smtp.sendgrid.net
          port: 587
          username: apikey
          password_env: SG_KEY
          from: admin@mydomain.com
          from_name: sender mydomain.com
        host:
          use: custom
          host: smtp.office365.com
          port: 587
          username: name@provider.com
          password: VeryS3cretHostPass
        orgs:
          acme:
            senders: ["*@acme.example"]
            host: smtp.gmail.com
            port: 465
            tls: true
            username: alerts@acme.example
            password_env: ACME_PW
          globex:
            use: default
        """
    private let environment = ["SG_KEY": "SG.VerySecretKey", "ACME_PW": "AcmeS3cret"]

    @Test func renderShowsEveryRouteAndNoPassword() throws {
        let config = try ConfigTestSupport.parse(yaml, environment: environment)
        let text = ConfigReport.render(config)
        #expect(text.hasPrefix("configuration OK\n"))
        #expect(text.contains("listen: 127.0.0.1:2525"))
        #expect(text.contains("spool: /var/spool/test"))
        #expect(text.contains("host level: host route"))
        #expect(text.contains("org acme (senders: *@acme.example): org route"))
        #expect(text.contains("org globex: host route"))
        #expect(text.contains("upstream: smtp.gmail.com:465, tls implicit"))
        #expect(text.contains("auth: alerts@acme.example, password ******** (env ACME_PW)"))
        #expect(text.contains("auth: name@provider.com, password ******** (inline)"))
        for secret in ["SG.VerySecretKey", "AcmeS3cret", "VeryS3cretHostPass"] {
            #expect(!text.contains(secret))
        }
    }

    @Test func renderShowsTheDefaultLayerAndFrom() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal + "\n  from: a@b.example\n  from_name: Ops")
        let text = ConfigReport.render(config)
        #expect(text.contains("host level: default route"))
        #expect(text.contains("from: \"Ops\" <a@b.example>, rewrite_from fill"))
        #expect(text.contains("auth: none (anonymous)"))
    }

    @Test func explainSenderPatternAndOrgLayer() throws {
        let config = try ConfigTestSupport.parse(yaml, environment: environment)
        let choice = OrgClassifier(config: config).classify(headerValue: nil, sender: "bot@acme.example")
        let text = ConfigReport.explain(RouteResolver.resolve(org: choice.orgID, config: config), choice: choice,
                                        sender: "bot@acme.example", config: config)
        #expect(text.contains("org: acme (sender bot@acme.example matches *@acme.example)"))
        #expect(text.contains("route: org layer (org acme has use: custom)"))
        #expect(text.contains("smtp.gmail.com:465"))
        #expect(!text.contains("AcmeS3cret"))
    }

    @Test func explainHeaderAndInheritance() throws {
        let config = try ConfigTestSupport.parse(yaml, environment: environment)
        let choice = OrgClassifier(config: config).classify(headerValue: "globex", sender: "")
        let text = ConfigReport.explain(RouteResolver.resolve(org: choice.orgID, config: config), choice: choice,
                                        sender: nil, config: config)
        #expect(text.contains("org: globex (from the X-Smarthost-Org header)"))
        #expect(text.contains("route: host layer (org globex has use: default, so the host level applies; host has use: custom)"))
    }

    @Test func explainHostLevelDownToDefault() throws {
        let config = try ConfigTestSupport.parse(ConfigTestSupport.minimal)
        let choice = OrgClassifier(config: config).classify(headerValue: nil, sender: "x@y.example")
        let text = ConfigReport.explain(RouteResolver.resolve(org: choice.orgID, config: config), choice: choice,
                                        sender: "x@y.example", config: config)
        #expect(text.contains("org: none, host level (no org header, and sender x@y.example matches no org's senders)"))
        #expect(text.contains("route: default layer (host has use: default, so the default route applies)"))

        let unknown = OrgChoice(orgID: "initech", source: .header("X-Smarthost-Org"))
        let unknownText = ConfigReport.explain(RouteResolver.resolve(org: "initech", config: config), choice: unknown,
                                               sender: nil, config: config)
        #expect(unknownText.contains("org initech is not configured, so the host level applies"))
    }

    /// `smarthost routes --org <value>` says when the value could not be an org id.
    @Test func anIgnoredHeaderValueIsNamedInTheExplanation() {
        let config = RelayConfig(hostname: "relay.test", defaultRoute: RouteSettings(
            host: "smtp.example.com", port: 587, tls: .starttls, domain: "relay.test"))
        let choice = OrgClassifier(config: config).classify(headerValue: "acme corp", sender: "")
        let text = ConfigReport.explain(RouteResolver.resolve(org: choice.orgID, config: config),
                                        choice: choice, sender: nil, config: config)
        #expect(text.hasPrefix("org: none, host level (no usable org header); the org header's value was ignored: not an org id"),
                "\(text)")
    }
}
