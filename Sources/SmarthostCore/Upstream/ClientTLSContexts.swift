/// The client TLS contexts of one configuration, one per CA bundle (the system trust store
/// for routes without `ca_file`). Reading a bundle is file I/O, so every context the
/// configuration can need is built on a worker thread as soon as the configuration is
/// made — at start and at each reload — and the event loop only picks it up. A connection
/// starts its handshake only after DNS, connect and the greeting, so the context is ready
/// long before; if it is not, the loop waits for the build already under way rather than
/// read the file a second time.
///
/// A bundle that cannot be read fails the attempt that asked for it with the file's error
/// and is read again on the worker, so fixing the file needs no reload; attempts made
/// while it is being read again fail the same way without waiting for it.
/// The `SSL_CTX` is only created on the worker; from then on it belongs to the loop.
final class ClientTLSContexts: @unchecked Sendable {
    private let lock = Mutex()
    private var built: [String: Result<TLSContext, TLSError>] = [:]
    private var building: Set<String> = []
    /// Why a bundle's last build failed, while it is being read again.
    private var lastFailure: [String: TLSError] = [:]

    /// One thread for every configuration's contexts, for the life of the process.
    private static let builder = WorkerThread(name: "tls-contexts")

    /// Starts building a context for each bundle (nil: the system trust store).
    init(caFiles: Set<String?>) {
        lock.withLock {
            for caFile in caFiles { startBuilding(caFile) }
        }
    }

    /// The context for `caFile`; on the loop thread.
    func context(caFile: String?) throws(TLSError) -> TLSContext {
        let key = Self.key(caFile)
        let result = lock.withLock { () -> Result<TLSContext, TLSError> in
            if let result = built[key] {
                if case .failure(let error) = result {
                    built[key] = nil
                    lastFailure[key] = error
                    startBuilding(caFile)
                }
                return result
            }
            // A broken bundle being read again: this attempt fails as the last one did
            // rather than wait for the file.
            if building.contains(key), let failure = lastFailure[key] { return .failure(failure) }
            if !building.contains(key) { startBuilding(caFile) }
            while built[key] == nil { lock.wait() }
            return built[key]!
        }
        return try result.get()
    }

    var beingBuilt: Int { lock.withLock { building.count } }
    var builtCount: Int { lock.withLock { built.count } }

    private static func key(_ caFile: String?) -> String { caFile ?? "" }

    /// Called with the lock held.
    private func startBuilding(_ caFile: String?) {
        let key = Self.key(caFile)
        guard building.insert(key).inserted else { return }
        Self.builder.submit { [self] in
            let result: Result<TLSContext, TLSError>
            do throws(TLSError) {
                result = .success(try TLSContext.client(caFile: caFile))
            } catch {
                result = .failure(error)
            }
            lock.withLock {
                building.remove(key)
                built[key] = result
                lock.broadcast()
            }
        }
    }
}
