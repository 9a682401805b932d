import Glibc
import Testing
@testable import SmarthostCore

/// Issue 19: a thread that does not block the relay's signals takes them with their
/// default action (HUP ended the relay with 129, TERM with 143 and no drain). Every thread
/// `SystemThread` starts blocks them, even when its creator blocks nothing. (The test
/// runner's own threads block nearly everything, so each test starts from an empty mask.)
@Suite struct ProcessSignalsTests {
    @Test func aSystemThreadBlocksTheRelaysSignalsWhateverItsCreatorsMask() throws {
        let seen = NameBox()
        // A creator with nothing blocked, as the test runner's threads are.
        let creator = try SystemThread.start(name: "creator") {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            let creatorBlocks = ProcessSignals.blockedInThisThread([SIGHUP])
            let child = try? SystemThread.start(name: "child") {
                seen.set(ProcessSignals.blockedInThisThread([SIGHUP, SIGINT, SIGTERM, SIGUSR2]) ? "blocked" : "open")
            }
            child?.join()
            // The creator's own mask is left as it was.
            if ProcessSignals.blockedInThisThread([SIGHUP]) != creatorBlocks { seen.set("creator changed") }
        }
        creator.join()
        #expect(seen.value == "blocked")
    }

    @Test func aWorkerThreadBlocksThem() throws {
        let seen = NameBox()
        let creator = try SystemThread.start(name: "creator") {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            let worker = WorkerThread(name: "mask-check")
            worker.submit { seen.set(ProcessSignals.blockedInThisThread([SIGHUP, SIGINT, SIGTERM]) ? "blocked" : "open") }
            worker.stop()
        }
        creator.join()
        #expect(seen.value == "blocked")
    }

    @Test func blockInThisThreadBlocksTheRelayedSet() throws {
        let seen = NameBox()
        let thread = try SystemThread.start(name: "blocker") {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            let before = ProcessSignals.blockedInThisThread([SIGHUP])
            ProcessSignals.blockInThisThread()
            seen.set("\(before) \(ProcessSignals.blockedInThisThread(ProcessSignals.relayed))")
        }
        thread.join()
        #expect(seen.value == "false true")
    }
}
