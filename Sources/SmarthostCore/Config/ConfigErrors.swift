/// One problem found in a configuration file: where it is and what is wrong.
/// The key path is dotted (`orgs.acme.port`, `listen[1]`) so an operator can find it
/// even when the line is unknown (a file that could not be read has no line).
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line in the YAML file, nil when the problem is not at a place in the file.
    public var line: Int?
    public var keyPath: String
    public var message: String
    /// The included file (`include:`) the problem is in; nil for the main file.
    public var file: String?

    public init(line: Int?, keyPath: String, message: String, file: String? = nil) {
        self.line = line
        self.keyPath = keyPath
        self.message = message
        self.file = file
    }

    /// `line 12: orgs.acme.port: 70000 is not a port (1-65535)`
    public var description: String {
        var parts: [String] = []
        if let line { parts.append("line \(line)") }
        if !keyPath.isEmpty { parts.append(keyPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// Every problem of one configuration file, reported together: an operator fixing a
/// file wants the whole list in one run of `check-config`, not one error per run.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// The file (or a caller-given name) the issues are in.
    public var source: String
    /// Sorted by line; issues without a line come first.
    public var issues: [ConfigIssue]

    public init(source: String, issues: [ConfigIssue]) {
        self.source = source
        self.issues = issues.enumerated().sorted { a, b in
            let fa = a.element.file ?? "", fb = b.element.file ?? ""
            if fa != fb { return fa < fb }
            let la = a.element.line ?? 0, lb = b.element.line ?? 0
            return la != lb ? la < lb : a.offset < b.offset
        }.map(\.element)
    }

    /// One issue per line, each prefixed by the source, like a compiler's diagnostics.
    public var description: String {
        issues.map { "\($0.file ?? source): \($0)" }.joined(separator: "\n")
    }
}
