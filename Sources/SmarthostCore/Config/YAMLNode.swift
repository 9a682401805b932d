/// A composed YAML document as the configuration reader walks it: scalars keep their text,
/// style and line, mappings keep their keys in file order. `YAMLParser` builds it from
/// libyaml's events; nothing here knows about C. The shape (`.scalar`, `.mapping`,
/// `.sequence`, `mark`, `Scalar.style`) is the one the schema files were written against
/// when they read Yams' tree, so they read this one unchanged.
enum Node: Sendable, Equatable {
    case scalar(Scalar)
    case mapping(Mapping)
    case sequence(Sequence)

    /// A scalar node (the reader's stand-in for an empty document or value).
    init(_ string: String, _ tag: Tag = .implicit, _ style: Scalar.Style = .any, _ mark: Mark? = nil) {
        self = .scalar(Scalar(string, tag, style, mark))
    }

    /// Where the node starts in the file.
    var mark: Mark? {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .mapping(let mapping): mapping.mark
        case .sequence(let sequence): sequence.mark
        }
    }

    /// The text of a scalar; nil for a mapping or a sequence.
    var string: String? {
        if case .scalar(let scalar) = self { return scalar.string }
        return nil
    }

    var sequence: Sequence? {
        if case .sequence(let sequence) = self { return sequence }
        return nil
    }

    var mapping: Mapping? {
        if case .mapping(let mapping) = self { return mapping }
        return nil
    }
}

extension Node {
    /// 1-based, as an editor counts.
    struct Mark: Sendable, Equatable {
        var line: Int
        var column: Int
    }

    /// An explicit tag (`!!str 5`) is kept as written; the reader resolves nothing by tag.
    enum Tag: Sendable, Equatable {
        case implicit
        case named(String)
    }

    struct Scalar: Sendable, Equatable {
        /// libyaml's scalar styles; `plain` is what `isNull` needs: `"null"` quoted is text.
        enum Style: Sendable, Equatable {
            case any, plain, singleQuoted, doubleQuoted, literal, folded
        }

        var string: String
        var tag: Tag
        var style: Style
        var mark: Mark?

        init(_ string: String, _ tag: Tag = .implicit, _ style: Style = .any, _ mark: Mark? = nil) {
            self.string = string
            self.tag = tag
            self.style = style
            self.mark = mark
        }
    }

    /// Key/value pairs in file order; keys are unique (the parser refuses a duplicate).
    struct Mapping: Sendable, Equatable, RandomAccessCollection {
        struct Pair: Sendable, Equatable {
            var key: Node
            var value: Node
        }

        var pairs: [Pair]
        var mark: Mark?

        var startIndex: Int { pairs.startIndex }
        var endIndex: Int { pairs.endIndex }
        subscript(position: Int) -> (key: Node, value: Node) { (pairs[position].key, pairs[position].value) }

        /// The value of the scalar key `key`.
        subscript(key: String) -> Node? {
            pairs.first { $0.key.string == key }?.value
        }
    }

    struct Sequence: Sendable, Equatable, RandomAccessCollection {
        var items: [Node]
        var mark: Mark?

        var startIndex: Int { items.startIndex }
        var endIndex: Int { items.endIndex }
        subscript(position: Int) -> Node { items[position] }
    }
}
