/// Queued messages ordered by when they are due, so finding what to send next costs
/// O(log n) however large the queue grows (a route that is down for an hour may hold many
/// thousands). Entries are never updated in place: a new due time is pushed again, and the
/// scheduler drops the stale copy when it surfaces.
struct DeliveryDueQueue {
    private var heap = MinHeap<SpoolID>()

    var isEmpty: Bool { heap.isEmpty }
    var earliest: Int64? { heap.first?.key }

    mutating func push(_ id: SpoolID, due: Int64) {
        heap.push(id, key: due)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: Int64) -> (due: Int64, id: SpoolID)? {
        guard let first = heap.first, first.key <= now else { return nil }
        heap.popFirst()
        return (first.key, first.value)
    }
}
