extension RelayConfig {
    /// One `key: value` of a YAML mapping, with its dotted path and line.
    struct Field {
        let key: String
        let path: String
        let node: Node
        /// The line of the key; a nested section's "missing key" errors point here.
        let keyLine: Int?
        /// The line of the value, or of the key when the value has none (an empty value).
        var line: Int? { node.mark?.line }
    }

    /// A YAML mapping with its place in the file; an empty value (`orgs:`) is an empty section.
    struct Section {
        let path: String
        /// Line of the key that opens the section (where a "missing key" is reported).
        let line: Int?
        let fields: [Field]

        func field(_ key: String) -> Field? { fields.first { $0.key == key } }
        func has(_ key: String) -> Bool { field(key) != nil }
        func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    }

    /// Reads typed values out of the composed `Node` tree and records every problem with its
    /// key path and line, so all of them can be reported at once. Walking the tree, rather
    /// than `Codable`, is what gives lines and unknown keys: a decoder knows only coding
    /// paths and stops at the first error.
    struct NodeReader {
        private(set) var issues: [ConfigIssue] = []
        /// Legal but risky values (`check-config` prints them; `--strict` refuses them).
        private(set) var warnings: [ConfigIssue] = []

        /// The included file being read, stamped on every issue and warning; nil: the main file.
        var currentFile: String?

        mutating func warn(_ line: Int?, _ path: String, _ message: String) {
            warnings.append(ConfigIssue(line: line, keyPath: path, message: message, file: currentFile))
        }

        mutating func report(_ line: Int?, _ path: String, _ message: String) {
            issues.append(ConfigIssue(line: line, keyPath: path, message: message, file: currentFile))
        }

        /// The mapping at `node`, after checking its keys against `allowed`.
        mutating func section(_ node: Node, path: String, line: Int?, allowed: [String]) -> Section? {
            if Self.isNull(node) { return Section(path: path, line: line, fields: []) }
            guard case .mapping(let mapping) = node else {
                report(node.mark?.line ?? line, path, "expected a mapping of keys")
                return nil
            }
            var fields: [Field] = []
            for (keyNode, value) in mapping {
                guard case .scalar(let key) = keyNode else {
                    report(keyNode.mark?.line, path, "keys must be plain names")
                    continue
                }
                let childPath = path.isEmpty ? key.string : "\(path).\(key.string)"
                // An empty value's own mark may be on the next line; it belongs to its key's.
                let valueNode = Self.isNull(value) ? Self.null(at: keyNode) : value
                fields.append(Field(key: key.string, path: childPath, node: valueNode, keyLine: keyNode.mark?.line))
            }
            checkUnknown(fields, allowed: allowed)
            return Section(path: path, line: line ?? node.mark?.line, fields: fields)
        }

        /// A free-form mapping (the org ids of `orgs:`): no key check.
        mutating func openSection(_ node: Node, path: String, line: Int?) -> Section? {
            section(node, path: path, line: line, allowed: [])
        }

        private mutating func checkUnknown(_ fields: [Field], allowed: [String]) {
            guard !allowed.isEmpty else { return }
            for field in fields where !allowed.contains(field.key) {
                var message = "unknown key"
                if let guess = Self.closest(to: field.key, in: allowed) { message += " (did you mean \(guess)?)" }
                report(field.line, field.path, message)
            }
        }

        mutating func missing(_ section: Section, _ key: String, _ why: String) {
            report(section.line, section.child(key), "missing (\(why))")
        }

        // MARK: Scalars

        /// A non-empty scalar as text; anything else is reported.
        mutating func string(_ field: Field) -> String? {
            guard case .scalar(let scalar) = field.node, !Self.isNull(field.node) else {
                report(field.line, field.path, "expected a value")
                return nil
            }
            return scalar.string
        }

        /// YAML 1.2 booleans only: `yes`/`on` are ambiguous enough to be refused.
        mutating func bool(_ field: Field) -> Bool? {
            guard let text = string(field) else { return nil }
            switch text.lowercased() {
            case "true": return true
            case "false": return false
            default:
                report(field.line, field.path, "\(text) is not true or false")
                return nil
            }
        }

        mutating func integer(_ field: Field, in range: ClosedRange<Int64>) -> Int64? {
            guard let text = string(field) else { return nil }
            guard let value = Units.integer(text), range.contains(value) else {
                report(field.line, field.path, "\(text) is not a whole number in \(range.lowerBound)-\(range.upperBound)")
                return nil
            }
            return value
        }

        mutating func port(_ field: Field) -> UInt16? {
            guard let text = string(field) else { return nil }
            guard let value = Units.integer(text), (1...65535).contains(value) else {
                report(field.line, field.path, "\(text) is not a port (1-65535)")
                return nil
            }
            return UInt16(value)
        }

        /// A positive duration in milliseconds (see `Units.milliseconds`).
        mutating func duration(_ field: Field, bareUnitMilliseconds: Int64 = 1_000) -> Int64? {
            guard let text = string(field) else { return nil }
            guard let value = Units.milliseconds(text, bareUnitMilliseconds: bareUnitMilliseconds), value > 0 else {
                let bare = bareUnitMilliseconds == 1 ? "milliseconds" : "seconds"
                report(field.line, field.path,
                       "\(text) is not a duration (e.g. 500ms, 30s, 5m, 1h, 2d; a bare number is \(bare))")
                return nil
            }
            return value
        }

        /// A positive size in bytes.
        mutating func size(_ field: Field) -> Int64? {
            guard let text = string(field) else { return nil }
            guard let value = Units.bytes(text), value > 0 else {
                report(field.line, field.path, "\(text) is not a size (e.g. 35MiB, 10MB, 512KiB, or bytes)")
                return nil
            }
            return value
        }

        /// One of the cases of `E`, by raw value.
        mutating func choice<E: RawRepresentable & CaseIterable>(_ field: Field, _: E.Type) -> E? where E.RawValue == String {
            guard let text = string(field) else { return nil }
            guard let value = E(rawValue: text) else {
                let names = E.allCases.map(\.rawValue).joined(separator: ", ")
                report(field.line, field.path, "\(text) is not one of: \(names)")
                return nil
            }
            return value
        }

        /// A sequence of scalars (a single scalar is not accepted: `allow: 10.0.0.0/8` is
        /// likely a forgotten list, and saying so is cheap).
        mutating func strings(_ field: Field) -> [(text: String, path: String, line: Int?)]? {
            if Self.isNull(field.node) { return [] }
            guard case .sequence(let sequence) = field.node else {
                report(field.line, field.path, "expected a list, e.g. [\"a\", \"b\"]")
                return nil
            }
            var out: [(String, String, Int?)] = []
            for (index, item) in sequence.enumerated() {
                let path = "\(field.path)[\(index)]"
                guard case .scalar(let scalar) = item, !Self.isNull(item) else {
                    report(item.mark?.line ?? field.line, path, "expected a value")
                    continue
                }
                out.append((scalar.string, path, item.mark?.line))
            }
            return out
        }

        // MARK: Helpers

        /// An empty value, `~` or `null`, unquoted.
        static func isNull(_ node: Node) -> Bool {
            guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
            return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        }

        /// A null placed on the key's line, so errors about an empty value have a line.
        private static func null(at key: Node) -> Node {
            .scalar(Node.Scalar("", .implicit, .plain, key.mark))
        }

        /// The nearest allowed key, for "did you mean"; a third of the key's letters may
        /// differ, so abbreviations like `max_msg_size` still find `max_message_size`.
        static func closest(to key: String, in allowed: [String]) -> String? {
            let scored = allowed.map { ($0, editDistance(Array(key), Array($0))) }
            guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, key.count / 3) else { return nil }
            return best.0
        }

        private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var current = [i + 1]
                for (j, cb) in b.enumerated() {
                    current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
                }
                previous = current
            }
            return previous[b.count]
        }
    }
}
