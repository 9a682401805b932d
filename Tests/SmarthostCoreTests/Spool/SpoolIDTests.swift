import Foundation
import Testing
@testable import SmarthostCore

@Suite struct SpoolIDTests {
    @Test func idsAreUniqueAcrossThreadsAndGenerators() {
        // Two generators stand in for two processes (the daemon and a CLI).
        let generators = [SpoolIDGenerator(), SpoolIDGenerator()]
        let collected = SpoolIDCollector()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            collected.add((0..<5000).map { _ in generators[worker % 2].next() })
        }
        let all = collected.all
        #expect(all.count == 20_000)
        #expect(Set(all).count == all.count)
    }

    /// The random bits are drawn once per generator: two generators on one frozen clock
    /// (same microsecond, same counter) still never collide, which bits drawn per id could
    /// not promise (each pair of ids there had its own 1-in-2^20 chance).
    @Test func randomBitsAreFixedPerGenerator() {
        let frozen: @Sendable () -> UInt64 = { 1_763_847_621_000_000 }
        let one = SpoolIDGenerator(clock: frozen), other = SpoolIDGenerator(clock: frozen)
        let ids = (0..<2_000).map { _ in one.next() }
        #expect(Set(ids.map { $0.rawValue.suffix(4) }).count == 1, "one generator, one set of random bits")
        let theirs = (0..<2_000).map { _ in other.next() }
        if ids[0].rawValue.suffix(4) != theirs[0].rawValue.suffix(4) {
            #expect(Set(ids).isDisjoint(with: theirs))
        }
    }

    @Test func idsAreFilenameSafeAndSortByTime() {
        let generator = SpoolIDGenerator()
        let ids = (0..<2000).map { _ in generator.next() }
        #expect(ids == ids.sorted())
        for id in ids.prefix(50) {
            #expect(id.rawValue.count == 18)
            #expect(id.rawValue.allSatisfy { $0.isNumber || $0.isLowercase })
            #expect(SpoolID(id.rawValue) == id)
        }
    }

    @Test func clockStepBackKeepsOrder() {
        let times = SpoolTestClock([5_000_000, 5_000_000, 4_000_000, 6_000_000])
        let generator = SpoolIDGenerator(clock: { times.next() })
        let ids = (0..<4).map { _ in generator.next() }
        #expect(ids == ids.sorted())
        #expect(ids[2].microseconds == 5_000_000)
        #expect(ids[3].microseconds == 6_000_000)
    }

    @Test func rejectsStringsThatAreNotIds() {
        #expect(SpoolID("../../etc/passwd") == nil)
        #expect(SpoolID("") == nil)
        #expect(SpoolID("0123456789abcdefgh") != nil)
        #expect(SpoolID("0123456789ABCDEFGH") == nil)
        #expect(SpoolID("0123456789abcdefgi") == nil)
    }
}

private final class SpoolTestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [UInt64]
    init(_ values: [UInt64]) { self.values = values }
    func next() -> UInt64 { lock.withLock { values.count > 1 ? values.removeFirst() : values[0] } }
}

private final class SpoolIDCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [SpoolID] = []
    func add(_ more: [SpoolID]) { lock.withLock { ids += more } }
    var all: [SpoolID] { lock.withLock { ids } }
}
