/// Queued messages ordered by when they are due: a binary min-heap, so finding what to send
/// next costs O(log n) however large the queue grows (a route that is down for an hour may
/// hold many thousands). Entries are never updated in place: a new due time is pushed again,
/// and the scheduler drops the stale copy when it surfaces.
struct DeliveryDueQueue {
    private var heap: [(due: Int64, id: SpoolID)] = []

    var isEmpty: Bool { heap.isEmpty }
    var earliest: Int64? { heap.first?.due }

    mutating func push(_ id: SpoolID, due: Int64) {
        heap.append((due, id))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent].due <= heap[child].due { break }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: Int64) -> (due: Int64, id: SpoolID)? {
        guard let first = heap.first, first.due <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown()
        }
        return first
    }

    private mutating func siftDown() {
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].due < heap[smallest].due { smallest = left }
            if right < heap.count, heap[right].due < heap[smallest].due { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
