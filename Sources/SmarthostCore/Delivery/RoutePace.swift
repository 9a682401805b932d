/// How fast one route may send now: the provider's configured limits (`rate`, `connections`)
/// and, after the upstream says it is throttling us, a slower pace that comes back up by
/// itself — additive increase, multiplicative decrease, as TCP does for the same reason.
///
/// A value with the clock passed in (milliseconds), owned by the delivery queue.
struct RoutePace: Sendable, Equatable {
    /// One change of pace, for the log line and `status`.
    struct Change: Sendable, Equatable {
        var slower: Bool
        var messagesPerSecond: Double?
        var connections: Int
    }

    /// No slower than one message a minute however often the upstream throttles.
    static let minimumRate = 1.0 / 60
    /// Throttling replies this close together are one event: the connections in flight
    /// when the limit is hit all hear it at once. Used when the reply's message is not
    /// known (a refused greeting); otherwise the message's start time decides (`throttled`).
    static let decreaseGuardMilliseconds: Int64 = 2_000
    /// How long a slower pace holds before each step back up.
    static let coolDownMilliseconds: Int64 = 10_000
    /// Steps back up to the full pace.
    static let increaseSteps = 10.0
    /// The window the delivered rate is measured over when the route has no `rate`.
    static let windowMilliseconds: Int64 = 60_000

    let configuredRate: Double?
    let configuredConnections: Int
    /// Messages per second allowed now; nil = no limit.
    private(set) var rate: Double?
    private(set) var connections: Int
    /// The pace to come back to when the route has no `rate`: the delivered rate when
    /// the first throttling reply came.
    private var ceiling: Double?
    private var tokens: Double
    private var refilledAt: Int64?
    private var lastDecreaseAt: Int64?
    private var increaseStep = RoutePace.minimumRate
    private var lastChangeAt: Int64 = 0
    /// Nothing starts before this: the upstream said when to come back (`Retry-After`).
    private(set) var pausedUntil: Int64?
    /// Messages started in each second of the last minute (slot: the second modulo 60, with
    /// the second it counts): constant work per message whatever the rate, where a list of
    /// start times would grow to a minute of them and be shifted on every start.
    private var startsInSecond = [Int](repeating: 0, count: 60)
    private var secondOfSlot = [Int64](repeating: .min, count: 60)

    init(limits: RouteLimits, defaultConnections: Int) {
        configuredRate = limits.messagesPerSecond
        configuredConnections = max(limits.connections ?? defaultConnections, 1)
        rate = configuredRate
        connections = configuredConnections
        tokens = Self.burst(configuredRate)
    }

    /// The same `rate` and connection cap (whatever the pace is now).
    func isConfigured(like other: RoutePace) -> Bool {
        configuredRate == other.configuredRate && configuredConnections == other.configuredConnections
    }

    /// Slower than configured because of throttling.
    var isSlowed: Bool { rate != configuredRate || connections != configuredConnections }

    /// One second's worth of messages may go at once, and at least one.
    private static func burst(_ rate: Double?) -> Double { max(rate ?? 1, 1) }

    private mutating func refill(now: Int64) {
        guard let rate else { return }
        let since = refilledAt ?? now
        tokens = min(tokens + Double(max(now - since, 0)) * rate / 1000, Self.burst(rate))
        refilledAt = now
    }

    /// Whether a message may start now (without taking the token).
    mutating func mayStart(now: Int64) -> Bool {
        if let pausedUntil, now < pausedUntil { return false }
        refill(now: now)
        return rate == nil || tokens >= 1
    }

    /// A message starts: takes its token and counts it for the delivered rate.
    mutating func started(now: Int64) {
        refill(now: now)
        if rate != nil { tokens -= 1 }
        let second = now / 1000
        let slot = Int(second % 60)
        if secondOfSlot[slot] != second {
            secondOfSlot[slot] = second
            startsInSecond[slot] = 0
        }
        startsInSecond[slot] += 1
    }

    /// When the next message may start; nil when one may now (or there is no limit).
    mutating func nextStartAt(now: Int64) -> Int64? {
        if let pausedUntil, now < pausedUntil { return pausedUntil }
        guard let rate, !mayStart(now: now) else { return nil }
        return now + Int64(((1 - tokens) * 1000 / rate).rounded(.up))
    }

    /// Messages per second started over the last minute (or since the first of them).
    func deliveredRate(now: Int64) -> Double {
        let second = now / 1000
        var count = 0
        var first: Int64?
        for slot in 0..<60 where secondOfSlot[slot] > second - 60 && startsInSecond[slot] > 0 {
            count += startsInSecond[slot]
            first = min(first ?? secondOfSlot[slot], secondOfSlot[slot])
        }
        guard let first else { return Self.minimumRate }
        let span = max(now - first * 1000, 1_000)
        return Double(count) * 1000 / Double(span)
    }

    /// The upstream said "too fast": halve the rate and the connections (one step per burst).
    /// `sentAt`: when the refused message started. One that started before the last
    /// decrease was sent at the old pace, so its refusal is the same event; one that started
    /// after it says the slower pace is still too fast, however soon it comes (as TCP halves
    /// once per round trip). Without it, replies within `decreaseGuardMilliseconds` are one.
    /// `retryAfter`: the upstream said how long to wait (Graph's `Retry-After`): nothing
    /// starts before then, whether or not this reply counts as a new decrease.
    mutating func throttled(now: Int64, sentAt: Int64? = nil, retryAfter: Int64? = nil) -> Change? {
        if let retryAfter { pausedUntil = max(pausedUntil ?? 0, now + retryAfter) }
        if let last = lastDecreaseAt {
            if let sentAt {
                if sentAt <= last { return nil }
            } else if now - last < Self.decreaseGuardMilliseconds {
                return nil
            }
        }
        let current = rate ?? deliveredRate(now: now)
        // Without a configured rate, the way back up ends below the slowest pace found too
        // fast so far.
        if configuredRate == nil { ceiling = min(ceiling ?? current, current) }
        let slower = max(current / 2, Self.minimumRate)
        increaseStep = max(slower / Self.increaseSteps, Self.minimumRate)
        refill(now: now)
        rate = slower
        // No burst left: the upstream has just said the last one was too much, so the next
        // message waits a whole interval of the slower rate.
        tokens = 0
        connections = max(connections / 2, 1)
        lastDecreaseAt = now
        lastChangeAt = now
        return Change(slower: true, messagesPerSecond: rate, connections: connections)
    }

    /// A cool-down went by without throttling: one step back up.
    mutating func recover(now: Int64) -> Change? {
        guard isSlowed, now - lastChangeAt >= Self.coolDownMilliseconds else { return nil }
        lastChangeAt = now
        connections = min(connections + 1, configuredConnections)
        if let current = rate, let full = configuredRate ?? ceiling {
            // Steps of a tenth of the pace the last decrease left, not of the full rate: back
            // to where the upstream said "too fast" in ten cool-downs, so the pace settles in
            // a slow saw-tooth under the limit instead of overshooting it at every climb.
            let next = current + increaseStep
            rate = next >= full ? configuredRate : next
        }
        if rate == configuredRate, configuredRate == nil { ceiling = nil }
        if rate == nil { tokens = Self.burst(nil) }
        return Change(slower: false, messagesPerSecond: rate, connections: connections)
    }

    /// When `recover` has something to do next; nil when at full pace.
    var nextRecoveryAt: Int64? { isSlowed ? lastChangeAt + Self.coolDownMilliseconds : nil }

    /// `12/s`, `30/min`, `unlimited`: for logs and `status`.
    static func describe(_ rate: Double?) -> String {
        guard let rate else { return "unlimited" }
        if rate >= 1 { return "\(Self.trim(rate))/s" }
        if rate * 60 >= 1 { return "\(Self.trim(rate * 60))/min" }
        return "\(Self.trim(rate * 3600))/h"
    }

    private static func trim(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
