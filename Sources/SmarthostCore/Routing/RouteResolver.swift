/// Which level of the settings model supplied a route. The raw value is stable: it is
/// written to logs (`route=org`) and spool records.
public enum RouteLayer: String, Sendable, Hashable, CaseIterable {
    case org
    case host
    case `default`
}

/// The route a message takes and where it came from.
public struct ResolvedRoute: Sendable, Equatable {
    /// The message's org as classified (nil = host level); kept even when the org is not
    /// configured, so logs show the tenant the mail was for.
    public var orgID: String?
    public var layer: RouteLayer
    public var settings: RouteSettings

    public init(orgID: String?, layer: RouteLayer, settings: RouteSettings) {
        self.orgID = orgID
        self.layer = layer
        self.settings = settings
    }
}

/// Route resolution: every precedence of the settings model (product.md §2) in one
/// function, like Postfix's trivial-rewrite resolves all relayhost rules in one place.
public enum RouteResolver {
    /// org custom > host custom > default. An org that is absent from the configuration,
    /// or has `use: default`, inherits the host level; a host with `use: default` gets the
    /// default route.
    public static func resolve(org: String?, config: RelayConfig) -> ResolvedRoute {
        if let org, let setting = config.org(org), case .custom(let route) = setting.route {
            return ResolvedRoute(orgID: org, layer: .org, settings: route)
        }
        if case .custom(let route) = config.host {
            return ResolvedRoute(orgID: org, layer: .host, settings: route)
        }
        return ResolvedRoute(orgID: org, layer: .default, settings: config.defaultRoute)
    }
}
