import CYAML

/// Why a YAML text has no tree: the line (1-based) where libyaml stopped, and words for
/// the operator (libyaml's own, plus a hint where its words name the parser's state).
struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    var line: Int?
    var message: String

    var description: String { (line.map { "line \($0): " } ?? "") + message }
}

/// The configuration's YAML, and the JSON of token endpoints and key files (JSON is YAML
/// 1.2's flow style), composed into a `Node` tree by Debian's libyaml. The only file that
/// sees libyaml: its event parser is driven here and each event handed to `YAMLComposer`.
///
/// One document per text; anchors and aliases are refused (a configuration does not need
/// them, and refusing them makes "billion laughs" impossible instead of bounded).
enum YAMLParser {
    /// Nesting deeper than this is refused. The configuration nests six deep and a token
    /// reply two; the bound keeps a hostile `[[[[…` from growing the stack of open nodes.
    static let maxDepth = 64

    static func compose(_ text: String) throws(YAMLError) -> Node? {
        try compose(bytes: Array(text.utf8))
    }

    /// Bytes that are not UTF-8 are refused with the line of the first bad one.
    static func compose(bytes: [UInt8]) throws(YAMLError) -> Node? {
        let parser = LibYAMLParser()
        return try bytes.withUnsafeBufferPointer { input in
            Result { () throws(YAMLError) -> Node? in try parse(input, with: parser) }
        }.get()
    }

    private static func parse(_ input: UnsafeBufferPointer<UInt8>, with parser: LibYAMLParser) throws(YAMLError) -> Node? {
        parser.setInput(input)
        var composer = YAMLComposer(maxDepth: maxDepth)
        while true {
            guard var event = parser.next() else { throw parser.error(in: input) }
            defer { yaml_event_delete(&event) }
            if try composer.take(event) { return composer.root }
        }
    }
}

/// One owner for libyaml's parser object, freed in `deinit`.
private final class LibYAMLParser {
    var parser = yaml_parser_t()

    init() {
        // Fails only when malloc does; nothing then would work anyway.
        precondition(yaml_parser_initialize(&parser) == 1, "yaml_parser_initialize failed")
    }

    deinit { yaml_parser_delete(&parser) }

    /// The input must outlive the parse: libyaml reads it in place.
    func setInput(_ input: UnsafeBufferPointer<UInt8>) {
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, input.baseAddress ?? UnsafePointer(bitPattern: 1), input.count)
    }

    /// The next event, or nil when libyaml stopped at an error.
    func next() -> yaml_event_t? {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
        return event
    }

    func error(in input: UnsafeBufferPointer<UInt8>) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(line: nil, message: "YAML error: out of memory")
        case YAML_READER_ERROR:
            let offset = min(parser.problem_offset, input.count)
            let line = input[..<offset].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            return YAMLError(line: line, message: "cannot read the YAML text: \(problem)")
        default:
            let during = parser.context.map { " (\(String(cString: $0)))" } ?? ""
            let offset = parser.problem_mark.index
            let atTab = offset < input.count && input[offset] == UInt8(ascii: "\t")
            return YAMLError(line: parser.problem_mark.line + 1,
                             message: "YAML syntax error: \(problem)\(during)" + Self.hint(problem + during, atTab: atTab))
        }
    }

    /// libyaml's words name the parser's state, not the operator's mistake.
    static func hint(_ text: String, atTab: Bool) -> String {
        if text.contains("alias") || text.contains("anchor") {
            return "; quote values that start with * or & (senders: [\"*@acme.example\"])"
        }
        if text.contains("mapping values are not allowed") {
            return "; a value with \": \" in it needs quotes"
        }
        if atTab || (text.contains("found character that cannot start any token") && text.contains("\t")) {
            return "; YAML indents with spaces, not tabs"
        }
        return ""
    }
}

extension Node.Mark {
    init(_ mark: yaml_mark_t) {
        self.init(line: mark.line + 1, column: mark.column + 1)
    }
}

extension Node.Tag {
    init(_ tag: UnsafeMutablePointer<yaml_char_t>?) {
        self = tag.map { .named(String(cString: $0)) } ?? .implicit
    }
}

extension Node.Scalar.Style {
    init(_ style: yaml_scalar_style_t) {
        switch style {
        case YAML_PLAIN_SCALAR_STYLE: self = .plain
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: self = .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: self = .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: self = .literal
        case YAML_FOLDED_SCALAR_STYLE: self = .folded
        default: self = .any
        }
    }
}

extension YAMLComposer {
    /// Takes one libyaml event; true at the end of the stream.
    mutating func take(_ event: yaml_event_t) throws(YAMLError) -> Bool {
        let mark = Node.Mark(event.start_mark)
        switch event.type {
        case YAML_STREAM_END_EVENT:
            return true
        case YAML_DOCUMENT_START_EVENT:
            try startDocument(at: mark)
        case YAML_ALIAS_EVENT:
            throw Self.anchorError(at: mark)
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            if scalar.anchor != nil { throw Self.anchorError(at: mark) }
            // libyaml validated the UTF-8; a scalar may hold NUL (`"\0"`), so by length.
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            try add(.scalar(Node.Scalar(text, Node.Tag(scalar.tag), Node.Scalar.Style(scalar.style), mark)))
        case YAML_SEQUENCE_START_EVENT:
            if event.data.sequence_start.anchor != nil { throw Self.anchorError(at: mark) }
            try open(.sequence(Node.Sequence(items: [], mark: mark)))
        case YAML_MAPPING_START_EVENT:
            if event.data.mapping_start.anchor != nil { throw Self.anchorError(at: mark) }
            try open(.mapping(Node.Mapping(pairs: [], mark: mark)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            try close()
        default:
            break // stream start, document end
        }
        return false
    }
}
