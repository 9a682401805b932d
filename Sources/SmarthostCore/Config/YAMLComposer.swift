/// Builds the `Node` tree from parser events, without recursion: a stack of the mappings
/// and sequences still open. The rules a configuration needs beyond YAML's grammar are
/// decided here: one document, no anchors, keys unique, nesting bounded.
struct YAMLComposer {
    let maxDepth: Int
    /// The document's root once the stream ended; nil for an empty text.
    private(set) var root: Node?
    private var documents = 0
    private var open: [Frame] = []

    init(maxDepth: Int) {
        self.maxDepth = maxDepth
    }

    private struct Frame {
        var isMapping: Bool
        var mark: Node.Mark
        var items: [Node] = []
        var pairs: [Node.Mapping.Pair] = []
        /// A mapping's key waiting for its value.
        var key: Node?
        /// The line of each scalar key so far, to name both lines of a duplicate.
        var keyLines: [String: Int] = [:]
    }

    mutating func startDocument(at mark: Node.Mark) throws(YAMLError) {
        documents += 1
        guard documents == 1 else {
            throw YAMLError(line: mark.line, message: "YAML syntax error: a second document starts here (---); "
                            + "the file must hold one document")
        }
    }

    mutating func open(_ node: Node) throws(YAMLError) {
        let mark = node.mark ?? Node.Mark(line: 1, column: 1)
        guard open.count < maxDepth else {
            throw YAMLError(line: mark.line, message: "YAML nests deeper than \(maxDepth) levels")
        }
        open.append(Frame(isMapping: node.mapping != nil, mark: mark))
    }

    mutating func close() throws(YAMLError) {
        guard let frame = open.popLast() else { return }
        try add(frame.isMapping ? .mapping(Node.Mapping(pairs: frame.pairs, mark: frame.mark))
                                : .sequence(Node.Sequence(items: frame.items, mark: frame.mark)))
    }

    mutating func add(_ node: Node) throws(YAMLError) {
        guard let top = open.indices.last else {
            root = node
            return
        }
        guard open[top].isMapping else {
            open[top].items.append(node)
            return
        }
        if let key = open[top].key {
            open[top].pairs.append(Node.Mapping.Pair(key: key, value: node))
            open[top].key = nil
            return
        }
        if case .scalar(let scalar) = node, let line = scalar.mark?.line {
            if let first = open[top].keyLines[scalar.string] {
                throw YAMLError(line: line, message: "duplicate key: \(scalar.string) (first defined at line \(first))")
            }
            open[top].keyLines[scalar.string] = line
        }
        open[top].key = node
    }

    static func anchorError(at mark: Node.Mark) -> YAMLError {
        YAMLError(line: mark.line, message: "YAML anchors and aliases (&name, *name) are not supported; "
                  + "quote values that start with * or & (senders: [\"*@acme.example\"])")
    }
}
