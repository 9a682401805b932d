import Testing
@testable import SmarthostCore

@Suite struct RoutingRouteResolverTests {
    private let defaultRoute = RouteSettings(host: "smtp.sendgrid.net", port: 587, tls: .starttls, domain: "relay")
    private let hostRoute = RouteSettings(host: "smtp.office365.com", port: 587, tls: .starttls, domain: "relay")
    private let acmeRoute = RouteSettings(host: "smtp.gmail.com", port: 465, tls: .implicit, domain: "relay")

    private func config(host: RouteChoice) -> RelayConfig {
        RelayConfig(hostname: "relay", defaultRoute: defaultRoute, host: host, orgs: [
            OrgSetting(id: "acme", route: .custom(acmeRoute)),
            OrgSetting(id: "globex", route: .useDefault),
        ])
    }

    @Test func orgCustomBeatsHostCustom() {
        let resolved = RouteResolver.resolve(org: "acme", config: config(host: .custom(hostRoute)))
        #expect(resolved == ResolvedRoute(orgID: "acme", layer: .org, settings: acmeRoute))
    }

    @Test func orgCustomBeatsDefault() {
        let resolved = RouteResolver.resolve(org: "acme", config: config(host: .useDefault))
        #expect(resolved.layer == .org)
        #expect(resolved.settings == acmeRoute)
    }

    @Test func orgUseDefaultInheritsHostCustom() {
        let resolved = RouteResolver.resolve(org: "globex", config: config(host: .custom(hostRoute)))
        #expect(resolved == ResolvedRoute(orgID: "globex", layer: .host, settings: hostRoute))
    }

    @Test func orgUseDefaultWithHostUseDefaultGetsDefault() {
        let resolved = RouteResolver.resolve(org: "globex", config: config(host: .useDefault))
        #expect(resolved == ResolvedRoute(orgID: "globex", layer: .default, settings: defaultRoute))
    }

    @Test func unknownOrgGetsHostLevelAndKeepsItsID() {
        let custom = RouteResolver.resolve(org: "initech", config: config(host: .custom(hostRoute)))
        #expect(custom == ResolvedRoute(orgID: "initech", layer: .host, settings: hostRoute))
        let inherited = RouteResolver.resolve(org: "initech", config: config(host: .useDefault))
        #expect(inherited.layer == .default)
        #expect(inherited.orgID == "initech")
    }

    @Test func noOrgIsTheHostLevel() {
        #expect(RouteResolver.resolve(org: nil, config: config(host: .custom(hostRoute)))
            == ResolvedRoute(orgID: nil, layer: .host, settings: hostRoute))
        #expect(RouteResolver.resolve(org: nil, config: config(host: .useDefault))
            == ResolvedRoute(orgID: nil, layer: .default, settings: defaultRoute))
    }

    @Test func layerRawValuesAreStable() {
        #expect(RouteLayer.allCases.map(\.rawValue) == ["org", "host", "default"])
    }
}
