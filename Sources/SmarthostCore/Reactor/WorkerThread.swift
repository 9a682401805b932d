import Glibc

/// A plain thread that runs queued jobs in order, for blocking work the loop must never do
/// itself (getaddrinfo). Results go back to the loop with `EventLoop.execute`.
public final class WorkerThread: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var thread = pthread_t()
    public let name: String

    public init(name: String) {
        self.name = name
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        let unmanaged = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<WorkerThread>.fromOpaque(raw!).takeRetainedValue()
            worker.loop()
            return nil
        }, unmanaged.toOpaque())
    }

    public func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Lets queued jobs finish, then ends the thread.
    /// Idempotent: joining a thread twice is undefined behaviour.
    public func stop() {
        pthread_mutex_lock(&mutex)
        let first = !stopping
        stopping = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
        if first { pthread_join(thread, nil) }
    }

    private func loop() {
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty && !stopping {
                pthread_cond_wait(&condition, &mutex)
            }
            if jobs.isEmpty && stopping {
                pthread_mutex_unlock(&mutex)
                return
            }
            let batch = jobs
            jobs.removeAll()
            pthread_mutex_unlock(&mutex)
            for job in batch { job() }
        }
    }
}
