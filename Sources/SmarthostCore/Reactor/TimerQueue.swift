/// A handle to cancel a scheduled timer.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
}

/// Timers of the event loop: a binary min-heap on the deadline. Cancelled timers are
/// dropped lazily when they reach the top, so cancel is O(1) — sessions re-arm their idle
/// timer on every command, which makes cancel the common case.
struct TimerQueue {
    private struct Entry {
        var deadline: Int64
        var id: UInt64
    }

    private var heap: [Entry] = []
    private var actions: [UInt64: () -> Void] = [:]
    private var nextID: UInt64 = 1

    var count: Int { actions.count }

    mutating func schedule(at deadline: Int64, _ action: @escaping () -> Void) -> TimerID {
        let id = nextID
        nextID &+= 1
        actions[id] = action
        heap.append(Entry(deadline: deadline, id: id))
        siftUp(heap.count - 1)
        return TimerID(raw: id)
    }

    mutating func cancel(_ timer: TimerID) {
        actions.removeValue(forKey: timer.raw)
    }

    /// Milliseconds until the earliest live deadline, or -1 when there is none (epoll: wait forever).
    mutating func timeoutMilliseconds(now: Int64) -> Int32 {
        dropCancelledTop()
        guard let first = heap.first else { return -1 }
        return Int32(clamping: max(0, first.deadline - now))
    }

    /// Removes and returns every action whose deadline has passed, earliest first.
    mutating func expired(now: Int64) -> [() -> Void] {
        var due: [() -> Void] = []
        while true {
            dropCancelledTop()
            guard let first = heap.first, first.deadline <= now else { break }
            popTop()
            if let action = actions.removeValue(forKey: first.id) { due.append(action) }
        }
        return due
    }

    private mutating func dropCancelledTop() {
        while let first = heap.first, actions[first.id] == nil { popTop() }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent].deadline <= heap[child].deadline { break }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
