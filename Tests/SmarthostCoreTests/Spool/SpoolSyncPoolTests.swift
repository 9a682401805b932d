import Foundation
import Testing
@testable import SmarthostCore

/// The threads that fsync a batch's files together: every index runs exactly once, the
/// results come back in index order, and batches follow each other on the same threads.
@Suite struct SpoolSyncPoolTests {
    /// Counts runs per index from several threads.
    final class RunCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Int: Int] = [:]
        func add(_ index: Int) { lock.withLock { counts[index, default: 0] += 1 } }
        var snapshot: [Int: Int] { lock.withLock { counts } }
    }

    @Test func everyIndexRunsOnceAndResultsKeepTheirOrder() throws {
        let pool = SpoolSyncPool(threads: 4)
        defer { pool.stop() }
        let ids = (0..<64).map { _ in SpoolIDGenerator().next() }
        // Sizes around the thread count, 1 (no threads used) and 0; many rounds so that
        // threads still busy with one batch's last index meet the next batch.
        for round in 0..<200 {
            let count = [0, 1, 2, 3, 4, 5, 9, 17, 64][round % 9]
            let counter = RunCounter()
            let results = pool.run(count) { index in
                counter.add(index)
                // Slow enough that the pool's threads take indices, unevenly.
                usleep(UInt32(50 + index % 7 * 50))
                return (index + round) % 5 == 4 ? .failure(.closed) : .success(ids[(index + round) % ids.count])
            }
            #expect(results.count == count)
            for (index, result) in results.enumerated() {
                switch result {
                case .success(let id):
                    #expect((index + round) % 5 != 4 && id == ids[(index + round) % ids.count], "round \(round) index \(index)")
                case .failure:
                    #expect((index + round) % 5 == 4, "round \(round) index \(index)")
                }
            }
            #expect(counter.snapshot == Dictionary(uniqueKeysWithValues: (0..<count).map { ($0, 1) }),
                    "round \(round): each index must run exactly once")
        }
    }
}
