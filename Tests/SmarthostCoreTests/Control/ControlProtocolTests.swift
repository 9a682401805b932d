import Testing
@testable import SmarthostCore

@Suite struct ControlProtocolTests {
    let id = SpoolID("0123456789abcdefgh")!

    private func parse(_ text: String) -> Result<ControlRequest, ControlReply> {
        ControlRequest.parse(Array(text.utf8))
    }

    @Test func parsesEveryVerbCaseInsensitively() throws {
        #expect(try parse("STATUS").get() == .status)
        #expect(try parse("status").get() == .status)
        #expect(try parse("FLUSH").get() == .flush(nil))
        #expect(try parse("flush 0123456789abcdefgh").get() == .flush(id))
        #expect(try parse("RETRY 0123456789abcdefgh").get() == .retry(id))
        #expect(try parse("Delete  0123456789abcdefgh").get() == .delete(id))
    }

    @Test func requestsRoundTripThroughTheirWireForm() throws {
        for request in [ControlRequest.status, .flush(nil), .flush(id), .retry(id), .delete(id)] {
            let line = request.line
            #expect(line.last == UInt8(ascii: "\n"))
            #expect(try ControlRequest.parse(line.dropLast()).get() == request)
        }
    }

    @Test func refusesMalformedRequests() {
        for bad in ["", "   ", "NOOP", "RETRY", "DELETE", "STATUS now", "RETRY ../../etc/passwd",
                    "DELETE 0123456789ABCDEFGH", "RETRY 0123456789abcdefgh extra", "RETRY 0123456789abcdefgi"] {
            guard case .failure(let reply) = parse(bad) else {
                Issue.record("accepted \(bad)")
                continue
            }
            #expect(reply.code == .error)
        }
        #expect(throws: ControlReply.self) { try parse("DELETE \u{1}x").get() }
        #expect(throws: ControlReply.self) { try parse("FLUSH " + String(repeating: "a", count: 300)).get() }
    }

    @Test func repliesAreOneLineAndParseBack() {
        let reply = ControlReply.error("550 5.1.1 <a@b>: no such user\r\nsecond line")
        #expect(reply.description == "ERROR 550 5.1.1 <a@b>: no such user  second line")
        #expect(!reply.line.dropLast().contains(UInt8(ascii: "\n")))
        #expect(ControlReply.parse(reply.line.dropLast()) == reply)
        #expect(ControlReply.parse(Array("BUSY in delivery".utf8)) == .busy("in delivery"))
        #expect(ControlReply.parse(Array("OK".utf8)) == .ok(""))
        #expect(ControlReply.parse(Array("HELLO there".utf8)) == nil)
    }

    @Test func statusTravelsAsKeyValueWords() throws {
        let status = ControlStatus(queued: 5, deferred: 2, inFlight: 1, deadLetters: 3, delivered: 40, failed: 4,
                                   routesDown: 1, pid: 1234)
        #expect(status.description == "queued=5 deferred=2 inflight=1 dead=3 delivered=40 failed=4 routes_down=1 held=0 awaiting_credentials=0 oldest=0 uptime=0 routes_slowed=0 refusing_free=0 refusing_floor=0 pid=1234")
        #expect(ControlStatus(parsing: status.description) == status)
        // Keys from a newer daemon are skipped.
        let newer = try #require(ControlStatus(parsing: "queued=1 shiny=9 pid=7"))
        #expect(newer.queued == 1 && newer.pid == 7)
        #expect(ControlStatus(parsing: "nothing here") == nil)
        #expect(status.summary.contains("5 queued (2 deferred, 1 in delivery), 3 dead letters"))
    }
}
