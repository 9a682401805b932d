import Foundation
import Testing
@testable import SmarthostCore

/// The driver as a shell: events in (a message queued, a connection's report, a spool read
/// done, the timer, a reload, stop), actions out — connections opened for the queue's
/// target, the one `.send`, QUIT, outcomes in the spool. Real loop, real spool, connections
/// faked (`FakeUpstreamConnection`, which keeps the connection's promises), clocks injected.
@Suite(.serialized) struct DeliveryDriverTests {
    static let refused = UpstreamFailure(step: .connect, detail: "connection refused by 127.0.0.1:2525",
                                         reason: .connectFailed([]))

    @Test func aMessageInMemoryGoesOutOnTheConnectionTheQueueOpened() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        let envelope = try rig.store(recipients: ["a@example.com", "b@example.com"], tag: "memory")
        let content = try rig.content(envelope.id)
        rig.sync { rig.driver.handle(.queued(envelope, content: content)) }
        let connection = try #require(rig.connection(0), "the due message opened no connection")
        #expect(rig.sync { (connection.target.host, connection.target.port, connection.sent.count) } == ("127.0.0.1", 2525, 0),
                "nothing is sent before the connection is ready")

        rig.sync { connection.becomeReady() }
        let sent = rig.sync { connection.sent }
        #expect(sent.map(\.id) == [envelope.id])
        let message = try #require(sent.first).message
        #expect(message.recipients == ["a@example.com", "b@example.com"])
        #expect(message.sender == "app@example.com")
        let data = String(decoding: message.encodedData, as: UTF8.self)
        #expect(data.contains("Subject: test memory\r\n"))

        rig.sync { connection.finish(.transaction(FakeUpstreamConnection.delivered(sent[0].message))) }
        #expect(eventually(timeout: 10) { rig.queued(envelope.id) == nil }, "delivered, yet still in queue/")
        #expect(rig.sync { rig.driver.counters.delivered } == 1)
        #expect(rig.sync { rig.factory.made.count } == 1, "one message, one connection")
    }

    @Test func aMessageWithoutContentIsReadFromTheSpoolThenSentOnce() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        let envelope = try rig.store(tag: "recovered")
        rig.sync { rig.driver.handle(.queued(envelope, content: nil)) }
        let connection = try #require(rig.connection(0))
        rig.sync { connection.becomeReady() }
        #expect(eventually(timeout: 10) { rig.sync { connection.sent.count } == 1 }, "the spool read never reached the connection")
        let message = try #require(rig.sync { connection.sent.first?.message })
        #expect(String(decoding: message.encodedData, as: UTF8.self).contains("Subject: test recovered\r\n"))
        #expect(rig.sync { connection.misuse }.isEmpty)
    }

    @Test func aConnectionThatFailsAsItStartsDefersTheMessageByTheMonotonicClock() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        rig.factory.failAtStart = Self.refused
        let envelope = try rig.store()
        let startWall = rig.clocks.wall
        // `.closed` comes from inside `start()`: the driver takes it after the action list.
        rig.sync { rig.driver.handle(.queued(envelope, content: try? rig.content(envelope.id))) }
        #expect(eventually(timeout: 10) { rig.queued(envelope.id)?.attempts == 1 }, "the failed attempt was not recorded")
        let deferred = try #require(rig.queued(envelope.id))
        #expect(deferred.nextAttemptAt == startWall / 1000 + 60, "retry_min after a first failure, in wall seconds")
        #expect(deferred.lastError?.contains("connection refused") == true, "\(deferred.lastError ?? "-")")
        #expect(rig.sync { rig.driver.routesDown } == 1)

        rig.clocks.advance(milliseconds: 59_999)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { rig.factory.made.count } == 1, "retried before its time")
        rig.factory.failAtStart = nil
        rig.clocks.advance(milliseconds: 1)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { rig.factory.made.count } == 2, "not retried when due")
    }

    @Test func aMessageTheConnectionCannotTakeGoesBackWithoutAnAttempt() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        let envelope = try rig.store()
        rig.sync { rig.driver.handle(.queued(envelope, content: nil)) }
        let first = try #require(rig.connection(0))
        // Ready, then closing before the spool read is back (one loop turn: the read's
        // answer cannot come in between): the `.send` finds it unable to take the message.
        rig.sync {
            first.becomeReady()
            first.quit()
        }
        // Due again at once: it comes round on another connection.
        let second = try #require(rig.connection(1), "the message did not come round again")
        #expect(rig.sync { first.sent.isEmpty && first.misuse.isEmpty }, "sent on a connection that could not take it")
        #expect(rig.queued(envelope.id)?.attempts == 0, "a message never sent counted as an attempt")
        rig.sync { second.becomeReady() }
        #expect(eventually(timeout: 10) { rig.sync { second.sent.map(\.id) } == [envelope.id] })
        rig.sync { first.hangUp(nil) }
        #expect(rig.sync { second.sent.count } == 1, "the closing connection's end sent it again")
    }

    @Test func aMessageLostWithItsConnectionIsDeferredOnce() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        let envelope = try rig.store()
        rig.sync { rig.driver.handle(.queued(envelope, content: try? rig.content(envelope.id))) }
        let connection = try #require(rig.connection(0))
        rig.sync { connection.becomeReady() }
        #expect(rig.sync { connection.sent.count } == 1)
        rig.sync { connection.hangUp(UpstreamFailure(step: .protocol, detail: "connection reset by peer")) }
        #expect(eventually(timeout: 10) { rig.queued(envelope.id)?.attempts == 1 })
        // The record of `.finished` and the `.closed` behind it are one attempt, not two.
        Thread.sleep(forTimeInterval: 0.2)
        #expect(rig.queued(envelope.id)?.attempts == 1)
        #expect(rig.sync { rig.driver.counters.deferred } == 1)
    }

    @Test func anIdleConnectionIsToldToQuitAfterFiveSecondsOfTheMonotonicClock() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        let envelope = try rig.store()
        rig.sync { rig.driver.handle(.queued(envelope, content: try? rig.content(envelope.id))) }
        let connection = try #require(rig.connection(0))
        rig.sync { connection.becomeReady() }
        rig.sync { connection.finish(.transaction(FakeUpstreamConnection.delivered(connection.sent[0].message))) }
        rig.clocks.advance(milliseconds: DeliveryQueue.idleQuitMilliseconds - 1)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { connection.quits } == 0)
        rig.clocks.advance(milliseconds: 1)
        rig.sync { rig.driver.handle(.tick) }
        #expect(rig.sync { connection.quits } == 1)
    }

    @Test func stopWaitsForTheMessageInHandAndForEveryConnectionToClose() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        let envelope = try rig.store()
        rig.sync { rig.driver.handle(.queued(envelope, content: try? rig.content(envelope.id))) }
        let connection = try #require(rig.connection(0))
        rig.sync { connection.becomeReady() }
        let drained = ControlBox<Bool>()
        drained.value = false
        rig.sync { rig.driver.stop { drained.value = true } }
        Thread.sleep(forTimeInterval: 0.1)
        #expect(drained.value == false, "drained with a message at the upstream")
        rig.sync { connection.finish(.transaction(FakeUpstreamConnection.delivered(connection.sent[0].message))) }
        #expect(rig.sync { connection.quits } == 1, "a connection ready while stopping is told to quit")
        Thread.sleep(forTimeInterval: 0.1)
        #expect(drained.value == false, "drained with a connection still open")
        rig.sync { connection.hangUp(nil) }
        #expect(eventually(timeout: 10) { drained.value == true })
    }

    @Test func aReloadSendsTheNextAttemptToTheNewRoute() throws {
        let rig = try DeliveryDriverRig()
        defer { rig.finish() }
        rig.factory.failAtStart = Self.refused
        let envelope = try rig.store()
        rig.sync { rig.driver.handle(.queued(envelope, content: nil)) }
        #expect(eventually(timeout: 10) { rig.queued(envelope.id)?.attempts == 1 })
        let moved = DeliveryDriverRig.config.replacingOccurrences(of: "port: 2525", with: "port: 2526")
        let environment = DeliveryEnvironment(config: try ConfigTestSupport.parse(moved))
        rig.factory.failAtStart = nil
        rig.sync { rig.driver.handle(.reload(environment)) }
        rig.clocks.advance(milliseconds: 60_000)
        rig.sync { rig.driver.handle(.tick) }
        let second = try #require(rig.connection(1), "not retried after the reload")
        #expect(second.target.port == 2526)
    }
}
