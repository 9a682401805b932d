/// Whether the relay refuses every message for want of room (`limits.min_free_space`), as
/// a value: each reading of the spool's free space goes in, a change of state comes out
/// once. Below the floor every MAIL gets `452 4.3.1` and the journal had only one `refused`
/// line per message while `status` said all was well (issue 19); now entering and leaving
/// is one warning line each, and `status`, `STATUS=` and `/metrics` show it while it lasts.
public struct SpoolFreeSpaceWatch: Sendable, Equatable {
    /// A reading below the floor: what `status` and `STATUS=` print.
    public struct Refusal: Sendable, Equatable, CustomStringConvertible {
        public var freeBytes: UInt64
        public var floorBytes: UInt64

        public init(freeBytes: UInt64, floorBytes: UInt64) {
            self.freeBytes = freeBytes
            self.floorBytes = floorBytes
        }

        /// `refusing mail: spool free 10.2M < min_free_space 1.0G`
        public var description: String {
            "refusing mail: spool free \(Self.size(freeBytes)) < min_free_space \(Self.size(floorBytes))"
        }

        static func size(_ bytes: UInt64) -> String {
            QueueReport.size(Int(clamping: bytes))
        }
    }

    public enum Change: Sendable, Equatable {
        case entered(Refusal)
        /// Back above the floor: the reading that ended it.
        case left(Refusal)
    }

    public private(set) var refusing: Refusal?

    public init() {}

    /// One reading; a change only when the state flips. Readings while refusing update the
    /// numbers shown without a new log line.
    public mutating func observe(freeBytes: UInt64, floorBytes: UInt64) -> Change? {
        let reading = Refusal(freeBytes: freeBytes, floorBytes: floorBytes)
        let below = freeBytes < floorBytes
        defer { refusing = below ? reading : nil }
        switch (refusing, below) {
        case (nil, true): return .entered(reading)
        case (.some, false): return .left(reading)
        default: return nil
        }
    }
}
