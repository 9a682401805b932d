import Glibc

/// A queue id: 18 characters of lower-case Crockford base32, sortable by time.
///
/// Layout (90 bits): 55 bits of microseconds since the epoch, 15 bits of a per-process
/// counter, 20 random bits drawn once per generator (per process). The timestamp makes
/// ids sort by arrival (like OpenSMTPD's time-prefixed message ids, and Postfix "long queue
/// ids"); the counter makes ids from one process unique even within one microsecond; the
/// random bits separate two processes (the daemon and a CLI, or a restart with a clock
/// step back). A collision that beats all three is still caught: new `tmp/` files are
/// created with O_EXCL and the move into `queue/` never replaces an existing file
/// (renameat2 with RENAME_NOREPLACE).
public struct SpoolID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    static let length = 18
    /// Crockford's alphabet: no i, l, o, u; ASCII order equals numeric order.
    fileprivate static let alphabet: [UInt8] = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// Accepts only well-formed ids, so an operator's argument can never name a path.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == SpoolID.length,
              bytes.allSatisfy({ SpoolID.alphabet.contains($0) }) else { return nil }
        rawValue = text
    }

    fileprivate init(unchecked text: String) {
        rawValue = text
    }

    public var description: String { rawValue }

    public static func < (lhs: SpoolID, rhs: SpoolID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The arrival time encoded in the id, in microseconds since the epoch.
    public var microseconds: UInt64 {
        var value: UInt64 = 0
        for byte in rawValue.utf8.prefix(11) {
            value = value << 5 | UInt64(SpoolID.alphabet.firstIndex(of: byte) ?? 0)
        }
        return value
    }
}

/// Hands out ids; safe to call from any thread.
final class SpoolIDGenerator: @unchecked Sendable {
    private let lock = Mutex()
    private var lastMicros: UInt64 = 0
    private var counter: UInt64 = 0
    private let clock: @Sendable () -> UInt64
    /// Fixed for the generator's life: two generators then collide only if these match
    /// (1 in 2^20) *and* they hit the same microsecond and counter, where bits drawn per id
    /// gave every such pair of ids its own 1-in-2^20 chance (a test of two busy generators
    /// saw one in about a hundred runs) — and one getrandom call per id is saved.
    private let processBits: UInt64

    init(clock: @escaping @Sendable () -> UInt64 = SpoolIDGenerator.realtimeMicros) {
        self.clock = clock
        var rng = SystemRandomNumberGenerator()
        processBits = rng.next() & 0xFFFFF
    }

    func next() -> SpoolID {
        let (micros, count) = lock.withLock { () -> (UInt64, UInt64) in
            // Never go backwards inside one process: a clock step back keeps the last
            // timestamp and spends the counter instead, so ids still sort by arrival.
            let now = max(clock(), lastMicros)
            if now == lastMicros {
                counter += 1
                if counter >= 1 << 15 {
                    lastMicros += 1
                    counter = 0
                }
            } else {
                lastMicros = now
                counter = 0
            }
            return (lastMicros, counter)
        }
        return SpoolID(unchecked: Self.encode(micros: micros, counter: count, random: processBits))
    }

    /// 11 chars of time (55 bits), 3 of counter (15 bits), 4 of randomness (20 bits).
    private static func encode(micros: UInt64, counter: UInt64, random: UInt64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(SpoolID.length)
        append(micros, digits: 11, to: &out)
        append(counter, digits: 3, to: &out)
        append(random, digits: 4, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ value: UInt64, digits: Int, to out: inout [UInt8]) {
        for index in stride(from: digits - 1, through: 0, by: -1) {
            out.append(SpoolID.alphabet[Int((value >> UInt64(index * 5)) & 31)])
        }
    }

    @Sendable static func realtimeMicros() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
    }
}
