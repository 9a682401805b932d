/// Who may take one of the relay's connection slots (issue 19: one local user held all
/// 1 000 and a robot on the Unix socket got `421`). A value: the open connections counted
/// by client and by kind, the limits in, a decision out; `InboundServer` acts on it.
///
/// Three bounds, in this order:
/// - `max_connections`: the whole pool (descriptors and memory).
/// - the Unix socket's reserve: while a Unix socket listens, TCP clients may not take the
///   last `unixReserve` slots. Any local user can connect from as many 127.x addresses as
///   it likes, each a client of its own, so per-client caps alone let TCP fill the pool.
/// - the per-client share (`connectionsPerClient`): one address, or one uid on the Unix
///   socket, holds at most that many at once.
struct ConnectionAdmission: Sendable {
    enum Decision: Sendable, Equatable {
        case admit
        /// Every slot is taken (or, for a TCP client, every slot but the Unix socket's).
        case poolFull
        /// This client holds its share; `firstOfBurst` is true once until one of its
        /// connections ends, so a burst is logged on one line.
        case clientFull(firstOfBurst: Bool)
    }

    var maxConnections: Int
    /// 0: no per-client share.
    var perClient: Int
    /// Slots TCP clients may not take; 0 when no Unix socket listens.
    var unixReserve: Int

    private(set) var total = 0
    private(set) var tcp = 0
    private var byClient: [String: Int] = [:]
    private var refusedClients: Set<String> = []

    init(maxConnections: Int, perClient: Int, unixReserve: Int) {
        self.maxConnections = maxConnections
        self.perClient = perClient
        self.unixReserve = unixReserve
    }

    /// `key`: the client as `ClientIdentity.description` (an address, or `uid=N`).
    mutating func decide(key: String, isUnix: Bool) -> Decision {
        if total >= maxConnections { return .poolFull }
        // A reserve as large as the pool would lock TCP out entirely: keep one slot for it.
        if !isUnix, tcp >= max(1, maxConnections - unixReserve) { return .poolFull }
        if perClient > 0, byClient[key, default: 0] >= perClient {
            return .clientFull(firstOfBurst: refusedClients.insert(key).inserted)
        }
        return .admit
    }

    mutating func opened(key: String, isUnix: Bool) {
        total += 1
        if !isUnix { tcp += 1 }
        byClient[key, default: 0] += 1
    }

    mutating func closed(key: String, isUnix: Bool) {
        total -= 1
        if !isUnix { tcp -= 1 }
        let count = byClient[key, default: 1] - 1
        byClient[key] = count > 0 ? count : nil
        refusedClients.remove(key)
    }

    func count(of key: String) -> Int { byClient[key, default: 0] }
}
