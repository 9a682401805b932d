/// A handle to cancel a scheduled timer.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
}

/// Timers of the event loop: a binary min-heap on the deadline. Cancelled timers are
/// dropped lazily when they reach the top, so cancel is O(1) — sessions re-arm their idle
/// timer on every command, which makes cancel the common case.
struct TimerQueue {
    private var heap = MinHeap<UInt64>()
    private var actions: [UInt64: (deadline: Int64, action: () -> Void)] = [:]
    private var nextID: UInt64 = 1

    var count: Int { actions.count }
    var heapCountForTesting: Int { heap.count }

    mutating func schedule(at deadline: Int64, _ action: @escaping () -> Void) -> TimerID {
        let id = nextID
        nextID &+= 1
        actions[id] = (deadline, action)
        heap.push(id, key: deadline)
        compactIfMostlyCancelled()
        return TimerID(raw: id)
    }

    mutating func cancel(_ timer: TimerID) {
        actions.removeValue(forKey: timer.raw)
    }

    /// Milliseconds until the earliest live deadline, or -1 when there is none (epoll: wait forever).
    mutating func timeoutMilliseconds(now: Int64) -> Int32 {
        dropCancelledTop()
        guard let first = heap.first else { return -1 }
        return Int32(clamping: max(0, first.key - now))
    }

    /// Removes and returns the earliest action whose deadline has passed, or nil. One at a
    /// time, so the caller can run it before looking again: an action may cancel a timer
    /// that is due in the same batch (an idle connection handed a message cancels its idle
    /// timer), and that timer must then not run. Timers scheduled from `scheduledBefore` on
    /// are left for the next batch, so an action that re-arms itself at once cannot keep
    /// the loop from its I/O.
    mutating func popExpired(now: Int64, scheduledBefore limit: TimerID? = nil) -> (() -> Void)? {
        while true {
            dropCancelledTop()
            guard let first = heap.first, first.key <= now else { return nil }
            if let limit, first.value >= limit.raw { return nil }
            heap.popFirst()
            if let entry = actions.removeValue(forKey: first.value) { return entry.action }
        }
    }

    /// The id the next scheduled timer will get: marks where a batch of expired timers ends.
    var nextTimerID: TimerID { TimerID(raw: nextID) }

    /// Idle timers are re-armed on every command and run for minutes, so cancelled entries
    /// would pile up far from the top: rebuild from the live ones when they are the minority.
    private mutating func compactIfMostlyCancelled() {
        guard heap.count > 1024, heap.count > 2 * actions.count else { return }
        var fresh = MinHeap<UInt64>()
        for (id, entry) in actions { fresh.push(id, key: entry.deadline) }
        heap = fresh
    }

    private mutating func dropCancelledTop() {
        while let first = heap.first, actions[first.value] == nil { heap.popFirst() }
    }
}
