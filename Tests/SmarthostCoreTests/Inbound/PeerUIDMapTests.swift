import Testing
@testable import SmarthostCore

/// A peer uid from SO_PEERCRED is believed unless it may be the kernel's stand-in for a
/// user this namespace does not map (systemd's PrivateUsers=yes).
@Suite struct PeerUIDMapTests {
    @Test func theInitialNamespaceMapsEveryUIDAndBelievesNobody() {
        let map = PeerUIDMap(uidMap: "         0          0 4294967295\n")
        #expect(map.mapsEveryUID)
        #expect(map.believe(65534) == 65534)
        #expect(map.believe(0) == 0)
        #expect(map.believe(1001) == 1001)
    }

    /// What systemd 252 writes for PrivateUsers=yes with User=smarthost (uid 996): root and
    /// the service's user. Robots 1001 and 1002 both arrive as 65534: neither is believed.
    @Test func privateUsersLeaves65534Unknown() {
        let map = PeerUIDMap(uidMap: "0 0 1\n996 996 1\n")
        #expect(!map.mapsEveryUID)
        #expect(map.believe(65534) == nil)
        #expect(map.believe(0) == 0)
        #expect(map.believe(996) == 996)
    }

    @Test func theOverflowUIDIsTheKernelsSetting() {
        let map = PeerUIDMap(uidMap: "0 0 1\n", overflowUID: 65533)
        #expect(map.believe(65533) == nil)
        #expect(map.believe(65534) == 65534)
    }

    /// Ranges that together cover every uid, in any order, are a full map; a gap of one uid,
    /// or no map at all (unreadable), is not.
    @Test func coverageIsCheckedAcrossRanges() {
        #expect(PeerUIDMap(uidMap: "65535 65535 4294901760\n0 0 65535\n").mapsEveryUID)
        #expect(!PeerUIDMap(uidMap: "0 0 65534\n65535 65535 4294901760\n").mapsEveryUID)
        #expect(!PeerUIDMap(uidMap: "0 0 4294967294\n").mapsEveryUID)  // one short of (uid_t)-2
        #expect(!PeerUIDMap(uidMap: nil).mapsEveryUID)
        #expect(PeerUIDMap(uidMap: nil).believe(65534) == nil)
        #expect(!PeerUIDMap(uidMap: "garbage\n1 2\n").mapsEveryUID)
    }
}
