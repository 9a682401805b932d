import Testing
@testable import SmarthostCore

@Suite struct DeliveryDueQueueTests {

    @Test func popsOnlyWhatIsDueEarliestFirst() {
        var queue = DeliveryDueQueue()
        let ids = (0..<50).map { _ in SpoolIDGenerator().next() }
        for (index, id) in ids.enumerated().shuffled() { queue.push(id, due: Int64(index * 10)) }
        #expect(queue.earliest == 0)
        var popped: [Int64] = []
        while let entry = queue.popDue(now: 245) { popped.append(entry.due) }
        #expect(popped == (0...24).map { Int64($0 * 10) })
        #expect(queue.earliest == 250)
        #expect(queue.popDue(now: 249) == nil)
    }

    @Test func aReschedulePushesASecondCopy() {
        var queue = DeliveryDueQueue()
        let id = SpoolIDGenerator().next()
        queue.push(id, due: 100)
        queue.push(id, due: 5)
        #expect(queue.popDue(now: 10)?.due == 5)
        #expect(queue.popDue(now: 10) == nil)
        #expect(queue.popDue(now: 100)?.id == id)
    }
}
