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

extension ClientIdentity {
    /// Whether the client runs on this machine, so that a bare local part it sends
    /// (`root`) names this host's user (Postfix's `permit_inet_interfaces`, the default of
    /// `local_header_rewrite_clients`): a Unix-socket client; a loopback address; or the
    /// address the client reached us at (`localAddress`: a program on this host connecting
    /// to one of its own interfaces has that address as its source).
    func isOnThisHost(localAddress: [UInt8]?) -> Bool {
        switch self {
        case .unix:
            return true
        case .address(let bytes, _):
            return Self.isLoopback(bytes) || (localAddress.map { $0 == bytes } ?? false)
        }
    }

    /// 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104 (an IPv4 loopback client of a `[::]` socket).
    static func isLoopback(_ bytes: [UInt8]) -> Bool {
        switch bytes.count {
        case 4: return bytes[0] == 127
        case 16:
            if bytes[..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            return bytes[..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
        default: return false
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
