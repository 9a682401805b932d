import Glibc

extension ClientIdentity {
    /// The client of a socket just accepted: its address for TCP, its uid for a Unix socket
    /// (`SO_PEERCRED`: the credentials of the process that connected, which it cannot forge;
    /// unknown when our user namespace cannot tell that user from others, `PeerUIDMap`).
    init(fd: Int32, peer: SocketAddress) {
        if peer.isUnix {
            self = .unix(uid: UnixSocket.peerUID(fd).flatMap { PeerUIDMap.current.believe(UInt32($0)) })
        } else {
            self = .address(bytes: peer.ipBytes, text: peer.ipString)
        }
    }
}

/// A message refused for the org it would go out as, with that org for the log line.
struct TenancyRefusal {
    let reply: SMTPReply
    let org: String
}

extension InboundContext {
    /// `access:` rules are about networks: a Unix-socket client is local by construction
    /// and is judged by its uid, through the `clients:` of the org it sends as.
    func isAllowed(_ client: ClientIdentity) -> Bool {
        switch client {
        case .address(let bytes, _):
            if bytes.count == 4 {
                return config.access.allows(ipv4: bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            }
            return config.access.allows(ipv6: bytes)
        case .unix:
            return true
        }
    }

    /// Whether a classified message may go out as its org (`OrgTenancy`); nil: it may.
    func tenancyRefusal(_ choice: OrgChoice, sender: String, client: ClientIdentity) -> TenancyRefusal? {
        guard !tenancy.isOpen else { return nil }
        let decision = tenancy.decide(choice: choice, sender: sender, client: client)
        guard let reply = tenancy.reply(for: decision, client: client) else { return nil }
        switch decision {
        case .senderNotAllowed(let org), .clientNotAllowed(let org):
            return TenancyRefusal(reply: reply, org: OrgTenancy.printable(org))
        case .allowed:
            return nil
        }
    }
}
