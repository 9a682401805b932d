import Foundation
import Testing
@testable import SmarthostCore

/// The wall-clock jump through the driver: deferred messages in a real spool, the driver's
/// clocks injected, the wall clock set an hour forward or back. No burst of connections at
/// the jump, none before the retries are due by the monotonic clock, all of them when they
/// are; what the spool keeps (`nextAttemptAt`) is on the wall clock as it reads then.
@Suite(.serialized) struct DeliveryDriverClockTests {
    static let hour: Int64 = 3_600_000

    @Test(arguments: [hour, -hour]) func aWallClockJumpNeitherBurstsNorStallsRetries(jump: Int64) throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        rig.factory.failAtStart = DeliveryDriverTests.refused
        let messages = try (0..<5).map { index in try rig.store(tag: "\(index)") }
        let firstWall = rig.clocks.wall
        rig.sync { for message in messages { rig.driver.handle(.queued(message, content: nil)) } }
        #expect(eventually(timeout: 10) { messages.allSatisfy { rig.queued($0.id)?.attempts == 1 } }, "not all deferred")
        for message in messages {
            #expect(rig.queued(message.id)?.nextAttemptAt == firstWall / 1000 + 60, "persisted in wall seconds")
        }
        let made = rig.sync { rig.factory.made.count }

        rig.clocks.jumpWall(milliseconds: jump)
        rig.clocks.advance(milliseconds: 1)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { rig.factory.made.count } == made, "the jump of \(jump) ms fired the retries at once")
        #expect(rig.sync { rig.driver.routesDown } == 1, "the route's down time moved with the wall clock")
        rig.clocks.advance(milliseconds: 60_000 - 2)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { rig.factory.made.count } == made, "retried before the monotonic deadline")

        rig.clocks.advance(milliseconds: 1)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { rig.factory.made.count } > made, "the jump of \(jump) ms held the retries")
        // They failed again, now: the spool gets the jumped wall clock's time plus the delay.
        let secondWall = rig.clocks.wall
        #expect(eventually(timeout: 10) { messages.allSatisfy { rig.queued($0.id)?.attempts == 2 } }, "not all retried")
        for message in messages {
            let next = try #require(rig.queued(message.id)?.nextAttemptAt) * 1000
            #expect(next >= secondWall / 1000 * 1000 + 60_000 && next <= secondWall + Self.hour,
                    "next attempt \(next) is not on the wall clock \(secondWall)")
        }
    }
}
