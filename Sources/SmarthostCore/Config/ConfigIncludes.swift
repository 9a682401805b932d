#if canImport(Glibc)
import Glibc
#endif

extension RelayConfig.Schema {
    /// Keys an included file may have: it holds orgs, nothing else, so one generated file
    /// per org (or per customer) can never change the relay's own settings.
    static let includeKeys = ["orgs"]

    /// `include: ["orgs.d/*.yaml"]` (a pattern or a list, relative to the main file): every
    /// matching file, in name order, adds the orgs of its `orgs:` mapping after the main
    /// file's. Problems name the file and its line; an org id defined twice is an error that
    /// names both places. Read at every load, so a reload sees files added and removed.
    mutating func decodeIncludes(_ field: Field, _ context: RouteContext, after existing: [OrgSetting]) -> [OrgSetting] {
        let patterns: [(text: String, path: String, line: Int?)]
        if case .scalar = field.node, let one = reader.string(field) {
            patterns = [(one, field.path, field.line)]
        } else if let list = reader.strings(field) {
            patterns = list
        } else {
            return []
        }
        var seen: [String: String] = Dictionary(existing.map { ($0.id, "the main file") }, uniquingKeysWith: { a, _ in a })
        var orgs: [OrgSetting] = []
        for pattern in patterns {
            let files = Self.expand(RelayConfig.resolve(pattern.text, under: baseDirectory))
            if files.isEmpty, !pattern.text.contains("*"), !pattern.text.contains("?") {
                reader.report(pattern.line, pattern.path, "\(pattern.text): no such file")
            }
            for file in files {
                for org in decodeIncludedFile(file, context) {
                    if let first = seen[org.id] {
                        reader.currentFile = file
                        reader.report(nil, "orgs.\(org.id)", "org \(org.id) is already defined in \(first)")
                        reader.currentFile = nil
                        continue
                    }
                    seen[org.id] = file
                    orgs.append(org)
                }
            }
        }
        return orgs
    }

    private mutating func decodeIncludedFile(_ path: String, _ context: RouteContext) -> [OrgSetting] {
        reader.currentFile = path
        defer { reader.currentFile = nil }
        switch RelayConfig.readText(path) {
        case .failure(let reason):
            reader.report(nil, "", reason.text)
            return []
        case .success(let text):
            guard let root = compose(text),
                  let top = reader.section(root, path: "", line: nil, allowed: Self.includeKeys),
                  let orgs = top.field("orgs") else { return [] }
            return decodeOrgs(orgs, context)
        }
    }

    /// glob(3), sorted; nothing for no match. Directories are skipped.
    static func expand(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, GLOB_MARK, nil, &result) == 0 else { return [] }
        var paths: [String] = []
        for index in 0..<Int(result.gl_pathc) {
            guard let raw = result.gl_pathv[index] else { continue }
            let path = String(cString: raw)
            if !path.hasSuffix("/") { paths.append(path) }
        }
        return paths.sorted()
    }
}
