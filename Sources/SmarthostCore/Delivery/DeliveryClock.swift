/// The one clock convention of the delivery side: a clock is a `@Sendable () -> Int64` of
/// milliseconds, injected where it is read (the driver), never read inside a value. Every
/// in-memory deadline (a message's due time in the queue, a host's down time, an idle
/// connection's quit, the pace) is on the monotonic clock, so setting the system time
/// neither fires them all at once nor holds them for an hour; what outlives the process (a
/// deferred message's next attempt, its age, the time a log line names) is wall time, kept
/// in the spool.
struct DeliveryClocks: Sendable {
    var monotonic: @Sendable () -> Int64
    var wall: @Sendable () -> Int64

    static let system = DeliveryClocks(monotonic: { MonotonicClock.nowMilliseconds() },
                                       wall: { WallClock.nowMilliseconds() })

    /// Both clocks read together: the instant every queue event carries.
    func now() -> DeliveryInstant {
        DeliveryInstant(monotonic: monotonic(), wall: wall())
    }
}

/// One instant on both clocks, in milliseconds. The queue converts between them only at
/// the spool's edge: a persisted due time becomes a monotonic deadline as the message is
/// queued, and a deferral's monotonic delay becomes a wall time as it is recorded.
struct DeliveryInstant: Sendable, Equatable {
    var monotonic: Int64
    var wall: Int64

    /// The monotonic deadline for a wall-clock time (in the past: before `monotonic`).
    func monotonic(atWall time: Int64) -> Int64 {
        monotonic &+ (time &- wall)
    }

    /// The same instant on both clocks, for simulations and tests that keep one clock.
    static func both(_ milliseconds: Int64) -> DeliveryInstant {
        DeliveryInstant(monotonic: milliseconds, wall: milliseconds)
    }
}
