/// A binary min-heap on an `Int64` key (a deadline), shared by the loop's timers and the
/// delivery due queue.
struct MinHeap<Value> {
    private var items: [(key: Int64, value: Value)] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var first: (key: Int64, value: Value)? { items.first }

    mutating func push(_ value: Value, key: Int64) {
        items.append((key, value))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent].key <= items[child].key { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    @discardableResult
    mutating func popFirst() -> (key: Int64, value: Value)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown()
        }
        return top
    }

    private mutating func siftDown() {
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left].key < items[smallest].key { smallest = left }
            if right < items.count, items[right].key < items[smallest].key { smallest = right }
            if smallest == parent { return }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
