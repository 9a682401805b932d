import ArgumentParser
import Glibc
import SmarthostCore

/// One screen for "is mail flowing?": the daemon's counts, the routes it has marked down
/// with their last error, the routes slowed by throttling with their pace, and the queue by
/// org and route with the oldest message.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One screen: running or not, counts, routes down with their last error, routes slowed by throttling, queue by org and route.")

    @OptionGroup var options: QueueOptions
    @Flag(name: .long, help: "Print JSON instead of text.") var json = false

    func run() throws {
        let spool = try options.openSpool()
        let status = options.askDaemon(.status).flatMap { ControlStatus(parsing: $0.text) }
        let answer = options.askDaemon(.routes)
        let routes = answer.map { ControlRouteDown.parse($0.text) } ?? []
        let slowed = answer.map { ControlRouteSlowed.parse($0.text) } ?? []
        let now = WallClock.nowSeconds()
        let queued = try QueueReport.load(spool, area: .queue)
        let deadLetters = try QueueReport.load(spool, area: .failed).count
        let quarantined = (try? spool.quarantined().count) ?? 0
        let summary = QueueSummary.rows(queued, now: now)
        if json {
            print(StatusReport.json(status: status, routes: routes, slowed: slowed, summary: summary, deadLetters: deadLetters,
                                    quarantined: quarantined), terminator: "")
        } else {
            print(StatusReport.text(version: BuildInfo.version, status: status, routes: routes, slowed: slowed, summary: summary,
                                    deadLetters: deadLetters, quarantined: quarantined), terminator: "")
        }
    }
}
