import Testing
@testable import SmarthostCore

/// The YAML layer over Debian's libyaml: the tree the schema reads (text, style, lines), and
/// the rules beyond YAML's grammar (one document, no anchors, unique keys, bounded nesting).
@Suite struct YAMLParserTests {
    static func compose(_ text: String) throws -> Node? { try YAMLParser.compose(text) }

    static func error(_ text: String) -> YAMLError? {
        do {
            _ = try YAMLParser.compose(text)
            return nil
        } catch {
            return error
        }
    }

    static func scalar(_ node: Node?) -> Node.Scalar? {
        if case .scalar(let scalar)? = node { return scalar }
        return nil
    }

    @Test func scalarsOfEveryStyle() throws {
        let root = try #require(try Self.compose("""
        plain: a b
        single: 'it''s'
        double: "tab\\there \\u00e9 \\x41 \\/"
        literal: |
          one
          two
        folded: >
          one
          two
        empty:
        tilde: ~
        quoted_null: "null"
        tagged: !!str 5
        """)?.mapping)
        let expected: [(String, String, Node.Scalar.Style, Int)] = [
            ("plain", "a b", .plain, 1), ("single", "it's", .singleQuoted, 2),
            ("double", "tab\there é A /", .doubleQuoted, 3), ("literal", "one\ntwo\n", .literal, 4),
            ("folded", "one two\n", .folded, 7), ("empty", "", .plain, 10), ("tilde", "~", .plain, 11),
            ("quoted_null", "null", .doubleQuoted, 12), ("tagged", "5", .plain, 13),
        ]
        #expect(root.count == expected.count)
        for (key, text, style, line) in expected {
            let value = try #require(Self.scalar(root[key]), "\(key)")
            #expect(value.string == text, "\(key)")
            #expect(value.style == style, "\(key)")
            if key != "empty" { #expect(value.mark?.line == line, "\(key)") }
        }
        #expect(Self.scalar(root["tagged"])?.tag == .named("tag:yaml.org,2002:str"))
        #expect(Self.scalar(root["plain"])?.tag == .implicit)
        // The reader's null rule rests on the style: `"null"` quoted is text.
        #expect(RelayConfig.NodeReader.isNull(root["tilde"]!))
        #expect(RelayConfig.NodeReader.isNull(root["empty"]!))
        #expect(!RelayConfig.NodeReader.isNull(root["quoted_null"]!))
    }

    @Test func nestedMappingsAndSequencesKeepOrderAndLines() throws {
        let root = try #require(try Self.compose("""
        # a comment
        b:
          - x   # trailing comment
          - y: 1
            z: [2, 3]
        a: {k: v, "q": 'w'}
        """)?.mapping)
        #expect(root.map { $0.key.string } == ["b", "a"])
        let list = try #require(root["b"]?.sequence)
        #expect(list.count == 2)
        #expect(list[0].string == "x")
        #expect(list[0].mark?.line == 3)
        let inner = try #require(list[1].mapping)
        #expect(inner.mark == Node.Mark(line: 4, column: 5))
        #expect(inner["z"]?.sequence?.map(\.string) == ["2", "3"])
        #expect(inner["z"]?.mark?.line == 5)
        let flow = try #require(root["a"]?.mapping)
        #expect(flow["k"]?.string == "v")
        #expect(flow["q"]?.string == "w")
        #expect(root["a"]?.mark?.line == 6)
    }

    @Test func anEmptyTextHasNoDocument() throws {
        #expect(try Self.compose("") == nil)
        #expect(try Self.compose("# only a comment\n\n") == nil)
        // An explicit empty document is an empty plain scalar, which the reader reads as null.
        #expect(Self.scalar(try Self.compose("---\n"))?.string == "")
    }

    @Test func syntaxErrorsNameTheirLine() {
        let unclosed = Self.error("a: 1\nb: [2\nc: 3\n")
        #expect(unclosed?.line == 3, "\(String(describing: unclosed))")
        #expect(unclosed?.message.hasPrefix("YAML syntax error: did not find expected") == true)
        let colon = Self.error("a: 1\nb: http: x\n")
        #expect(colon?.line == 2)
        #expect(colon?.message.contains("a value with \": \" in it needs quotes") == true)
        let tab = Self.error("a:\n\tb: 1\n")
        #expect(tab?.line == 2)
        #expect(tab?.message.contains("YAML indents with spaces, not tabs") == true, "\(String(describing: tab))")
    }

    @Test func aDuplicateKeyNamesBothLines() {
        let error = Self.error("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n")
        #expect(error == YAMLError(line: 5, message: "duplicate key: x (first defined at line 3)"))
        // The same key in two different mappings is no duplicate.
        #expect(Self.error("a:\n  x: 1\nb:\n  x: 2\n") == nil)
        #expect(Self.error("{a: 1, b: 2, a: 3}")?.line == 1)
    }

    @Test func anchorsAndAliasesAreRefused() throws {
        for text in ["a: &x 1\nb: *x\n", "a: &x\n  k: v\n", "a: &x [1]\n", "b: *x\n"] {
            let error = Self.error(text)
            #expect(error?.message.contains("anchors and aliases") == true || error?.message.contains("alias") == true,
                    "\(text): \(String(describing: error))")
            #expect(error?.message.contains("quote values that start with * or &") == true)
            #expect(error?.line == 1 || error?.line == 2)
        }
        // The classic billion-laughs document stops at its first anchor.
        let laughs = "a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\n"
        #expect(Self.error(laughs)?.line == 1)
        // Quoted, a star is text.
        #expect(try Self.compose("s: [\"*@acme.example\"]")?.mapping?["s"]?.sequence?.first?.string == "*@acme.example")
    }

    @Test func aSecondDocumentIsRefused() {
        let error = Self.error("a: 1\n---\nb: 2\n")
        #expect(error?.line == 2)
        #expect(error?.message.contains("a second document") == true)
        #expect(Self.error("---\na: 1\n...\n") == nil)
    }

    @Test func invalidUTF8IsRefusedWithItsLine() {
        let bytes = Array("a: 1\nb: ".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        #expect(throws: YAMLError(line: 2, message: "cannot read the YAML text: invalid trailing UTF-8 octet")) {
            try YAMLParser.compose(bytes: bytes)
        }
        #expect(throws: YAMLError.self) { try YAMLParser.compose(bytes: [0xFF, 0x0A]) }
    }

    @Test func nestingIsBoundedAtTheLimit() throws {
        let limit = YAMLParser.maxDepth
        let atLimit = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        var node = try #require(try Self.compose(atLimit))
        for _ in 1..<limit { node = try #require(node.sequence?.first) }
        #expect(node.sequence?.isEmpty == true)
        let past = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(Self.error(past) == YAMLError(line: 1, message: "YAML nests deeper than \(limit) levels"))
        // A hostile depth stops at the bound, long before the end of the text.
        #expect(Self.error(String(repeating: "[", count: 1_000_000))?.message.contains("deeper") == true)
        var block = ""
        for depth in 0...limit { block += String(repeating: " ", count: depth) + "k:\n" }
        #expect(Self.error(block)?.line == limit + 1)
    }

    @Test func aScalarMayHoldNUL() throws {
        #expect(try Self.compose("a: \"x\\0y\"")?.mapping?["a"]?.string == "x\u{0}y")
    }
}
