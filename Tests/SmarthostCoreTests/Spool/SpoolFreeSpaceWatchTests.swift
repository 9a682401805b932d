import Testing
@testable import SmarthostCore

/// Below `limits.min_free_space` every message is refused: the state changes once going
/// in and once coming out, however many readings (and refused messages) lie between.
@Suite struct SpoolFreeSpaceWatchTests {
    @Test func entersOnceStaysQuietAndLeavesOnce() {
        var watch = SpoolFreeSpaceWatch()
        #expect(watch.observe(freeBytes: 500, floorBytes: 100) == nil)
        #expect(watch.refusing == nil)
        let entered = watch.observe(freeBytes: 99, floorBytes: 100)
        #expect(entered == .entered(.init(freeBytes: 99, floorBytes: 100)))
        for free in [98, 50, 99] as [UInt64] {
            #expect(watch.observe(freeBytes: free, floorBytes: 100) == nil, "no new line while it lasts")
        }
        #expect(watch.refusing == .init(freeBytes: 99, floorBytes: 100), "the numbers shown follow the readings")
        // A reload lowers the floor: out, once.
        #expect(watch.observe(freeBytes: 99, floorBytes: 10) == .left(.init(freeBytes: 99, floorBytes: 10)))
        #expect(watch.refusing == nil)
        #expect(watch.observe(freeBytes: 99, floorBytes: 10) == nil)
    }

    @Test func exactlyAtTheFloorIsAccepted() {
        // checkStorage refuses only when free < floor (+ SIZE): at the floor a message is taken.
        var watch = SpoolFreeSpaceWatch()
        #expect(watch.observe(freeBytes: 100, floorBytes: 100) == nil)
        #expect(watch.observe(freeBytes: 99, floorBytes: 100) != nil)
        #expect(watch.observe(freeBytes: 100, floorBytes: 100) == .left(.init(freeBytes: 100, floorBytes: 100)))
    }

    @Test func describesItselfForStatus() {
        let refusal = SpoolFreeSpaceWatch.Refusal(freeBytes: 10 << 20, floorBytes: 1 << 30)
        #expect(refusal.description == "refusing mail: spool free 10M < min_free_space 1G")
    }

    @Test func travelsInStatusAndIsPrinted() throws {
        var status = ControlStatus(queued: 1, pid: 42)
        status.refusingMail = .init(freeBytes: 5000, floorBytes: 1 << 30)
        let parsed = try #require(ControlStatus(parsing: status.description))
        #expect(parsed.refusingMail == status.refusingMail)
        let text = StatusReport.text(version: "1", status: parsed, routes: [], summary: [], deadLetters: 0, quarantined: 0)
        #expect(text.contains("refusing mail: spool free 4.9K < min_free_space 1G: every message gets 452 4.3.1"), "\(text)")
        let json = StatusReport.json(status: parsed, routes: [], summary: [], deadLetters: 0, quarantined: 0)
        #expect(json.contains("\"refusing_mail\": {\"reason\": \"min_free_space\", \"spool_free_bytes\": 5000, \"min_free_space_bytes\": 1073741824}"), "\(json)")
        var clear = parsed
        clear.refusingMail = nil
        #expect(!StatusReport.text(version: "1", status: clear, routes: [], summary: [], deadLetters: 0, quarantined: 0).contains("refusing"))
        #expect(StatusReport.json(status: clear, routes: [], summary: [], deadLetters: 0, quarantined: 0).contains("\"refusing_mail\": null"))
    }
}
