import Testing
@testable import SmarthostCore

/// `transport: graph` routes: graph_url, the mailbox, oauth2 with Graph's scope, and the
/// SMTP keys that make no sense there refused.
@Suite struct ConfigGraphTests {
    static func yaml(_ lines: [String], oauth: [String]? = nil) -> String {
        let oauthLines = oauth ?? ["provider: microsoft", "tenant: contoso.example", "client_id: app-1",
                                   "client_secret_file: \(ConfigOAuth2Tests.keys.secret)"]
        return ConfigTestSupport.minimal + "\norgs:\n  contoso:\n    use: custom\n"
            + lines.map { "    " + $0 + "\n" }.joined()
            + (oauth == [] ? "" : "    oauth2:\n" + oauthLines.map { "      " + $0 + "\n" }.joined())
    }

    @Test func aGraphRouteGetsItsDefaults() throws {
        let config = try ConfigTestSupport.parse(Self.yaml(["transport: graph", "username: alerts@contoso.example"]))
        guard case .custom(let route) = config.orgs.first?.route else { Issue.record("no custom route"); return }
        #expect(route.transport == .graph)
        #expect(route.graphURL == "https://graph.microsoft.com")
        #expect(route.host == "graph.microsoft.com" && route.port == 443)
        #expect(route.oauth2?.scope == "https://graph.microsoft.com/.default")
        let target = DeliveryEnvironment.target(for: route)
        #expect(target.limits.connections == 4)
        #expect(target.upstream.graphURL == "https://graph.microsoft.com")
        #expect(target.key.graphURL == "https://graph.microsoft.com")
        #expect(ConfigReport.routeDetails(route).first?.contains("transport graph, graph_url https://graph.microsoft.com, mailbox alerts@contoso.example") == true)
    }

    @Test func graphURLPortAndAnExplicitScopeAreKept() throws {
        let config = try ConfigTestSupport.parse(Self.yaml(
            ["transport: graph", "username: a@contoso.example", "graph_url: https://[::1]:8443/", "connections: 2"],
            oauth: ["provider: microsoft", "tenant: t", "client_id: app-1", "client_secret_file: \(ConfigOAuth2Tests.keys.secret)",
                    "scope: https://graph.microsoft.us/.default"]))
        guard case .custom(let route) = config.orgs.first?.route else { Issue.record("no custom route"); return }
        #expect(route.host == "::1" && route.port == 8443)
        #expect(route.oauth2?.scope == "https://graph.microsoft.us/.default")
        #expect(DeliveryEnvironment.target(for: route).limits.connections == 2)
    }

    @Test func mistakesAreReported() {
        let noMailbox = ConfigTestSupport.issues(Self.yaml(["transport: graph"]))
        #expect(noMailbox.contains { $0.message.contains("sending mailbox") }, "\(noMailbox)")
        let noOAuth = ConfigTestSupport.issues(Self.yaml(["transport: graph", "username: a@x.example"], oauth: []))
        #expect(noOAuth.contains { $0.message.contains("OAuth2 token") }, "\(noOAuth)")
        let smtpKeys = ConfigTestSupport.issues(Self.yaml(["transport: graph", "username: a@x.example", "host: smtp.x", "port: 587"]))
        #expect(smtpKeys.filter { $0.message.contains("not used with transport: graph") }.count == 2, "\(smtpKeys)")
        let plainURL = ConfigTestSupport.issues(Self.yaml(["transport: graph", "username: a@x.example", "graph_url: http://graph.x"]))
        #expect(plainURL.contains { $0.message.contains("is not an https:// URL") }, "\(plainURL)")
        let stray = ConfigTestSupport.issues(Self.yaml(["host: smtp.x", "port: 587", "graph_url: https://g.x"], oauth: []))
        #expect(stray.contains { $0.message.contains("only used with transport: graph") }, "\(stray)")
        let unknown = ConfigTestSupport.issues(Self.yaml(["transport: carrier-pigeon", "host: smtp.x", "port: 587"], oauth: []))
        #expect(!unknown.isEmpty)
    }

    @Test func twoMailboxesOrTenantsOnOneGraphURLAreTwoRoutes() throws {
        func key(_ mailbox: String, tenant: String) throws -> RouteKey {
            let config = try ConfigTestSupport.parse(Self.yaml(["transport: graph", "username: \(mailbox)"],
                oauth: ["provider: microsoft", "tenant: \(tenant)", "client_id: app-1", "client_secret_file: \(ConfigOAuth2Tests.keys.secret)"]))
            guard case .custom(let route) = config.orgs.first?.route else { throw ConfigErrors(source: "t", issues: []) }
            return DeliveryEnvironment.target(for: route).key
        }
        #expect(try key("a@x.example", tenant: "t1") == key("a@x.example", tenant: "t1"))
        #expect(try key("a@x.example", tenant: "t1") != key("b@x.example", tenant: "t1"))
        #expect(try key("a@x.example", tenant: "t1") != key("a@x.example", tenant: "t2"))
    }
}
