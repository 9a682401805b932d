/// Carries a loop-thread closure through another thread without calling it there: a worker
/// captures it and hands it back with `EventLoop.execute { callback.call(result) }`, so the
/// closure (and whatever loop-owned state it touches) only ever runs on the loop.
final class LoopCallback<T>: @unchecked Sendable {
    private let body: (T) -> Void
    init(_ body: @escaping (T) -> Void) { self.body = body }
    func call(_ value: T) { body(value) }
}
