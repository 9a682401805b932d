/// Spools one message as it is received: streams the content into the spool's file
/// (`IncomingMessage`, the spool's side) and keeps the header section (bounded), so at the
/// end it can decide the org and route, build the envelope record and hand both to the
/// committer.
final class MessageSpooler {
    /// Headers beyond this are not searched for the org header (a sane client puts its
    /// headers in the first few KiB; the bound keeps memory per session small).
    static let headerCaptureLimit = 64 * 1024

    let envelope: InboundEnvelope
    /// `hostname:` and `aliases:`: bare local parts are qualified here, in the envelope and
    /// the address fields, so the spool holds what goes upstream (Postfix's cleanup(8)).
    let addressing: LocalAddressing
    /// The client is on this host: its header fields are qualified too. A remote client's
    /// header is its own (Postfix's `local_header_rewrite_clients`): left as written.
    let qualifiesHeaders: Bool
    private var incoming: IncomingMessage?
    private var spoolError: SpoolError?
    /// The header section as it goes to the spool, for the org header (at most the limit).
    private var headers: [UInt8] = []
    /// The start of the content, held back until its header section is whole (or the
    /// limit is reached) so its address fields can be qualified before it is written.
    private var held: [UInt8] = []
    private var holding = true

    init(envelope: InboundEnvelope, spool: Spool, addressing: LocalAddressing, qualifiesHeaders: Bool) {
        self.envelope = envelope
        self.addressing = addressing
        self.qualifiesHeaders = qualifiesHeaders
        do {
            incoming = try spool.begin(expectedSize: envelope.declaredSize ?? 0)
        } catch {
            spoolError = error
        }
    }

    /// The spool keeps the first write error itself and reports it at commit; the session
    /// reads the content to its end regardless.
    func append(_ bytes: [UInt8]) {
        guard holding else {
            incoming?.append(bytes)
            return
        }
        let searched = held.count
        held += bytes
        if HeaderFields.endOfSection(in: held, from: searched - 3) != nil {
            release(complete: true)
        } else if held.count >= Self.headerCaptureLimit {
            release(complete: false)
        }
    }

    /// Qualifies the held start and writes it: `complete` false when the header section was
    /// cut at the limit (fields past it are not qualified: the bound on memory per session).
    private func release(complete: Bool) {
        let rewritten = qualifiesHeaders
            ? HeaderAddressQualifier.qualify(held, domain: addressing.hostname, complete: complete) : held
        headers = Array(rewritten.prefix(Self.headerCaptureLimit))
        incoming?.append(rewritten)
        held = []
        holding = false
    }

    func abort() {
        incoming?.abort()
        incoming = nil
    }

    /// Decides the organization and route, then hands the file to the group committer.
    /// `completion` runs on the committer thread. A message that may not go out as its org
    /// is not committed: its file is removed, the refusal returned and `completion` never
    /// called.
    ///
    /// Tenancy is judged here, after DATA, for every rule, though a `clients:` rule met by
    /// a `senders` match could refuse at MAIL: the org header may still name another org,
    /// so the org is only known once the headers are in, and one place deciding gives one
    /// behaviour for clients to handle (RFC 5321 §4.2.5 lets the end of data refuse).
    func commit(context: InboundContext, client: ClientIdentity,
                completion: @escaping @Sendable (Result<CommittedMessage, SpoolError>) -> Void) -> TenancyRefusal? {
        guard let incoming else {
            completion(.failure(spoolError ?? SpoolError.insufficientStorage(detail: "no spool file")))
            return nil
        }
        if holding { release(complete: true) }
        self.incoming = nil
        let sender = addressing.qualify(envelope.sender.mailbox)
        let routed = context.route(id: incoming.id, sender: sender, headers: headers)
        if let refusal = context.tenancyRefusal(routed.choice, sender: sender, client: client) {
            incoming.abort()
            return refusal
        }
        var record = SpoolEnvelope(
            id: incoming.id, receivedAt: WallClock.nowSeconds(), sender: sender,
            recipients: addressing.recipients(envelope.recipients.map(\.mailbox)), org: routed.choice.orgID,
            layer: routed.route.layer.rawValue, route: routed.route.settings.endpoint,
            heloName: envelope.heloName, clientAddress: envelope.clientAddress, size: incoming.contentLength)
        record.nextAttemptAt = 0
        let accepted = record
        let content = incoming.contentInMemory
        context.spool.commit(incoming, envelope: record) { result in
            completion(result.map { id in
                var committed = accepted
                committed.id = id
                return CommittedMessage(envelope: committed, content: content)
            })
        }
        return nil
    }
}

/// What the log says about an accepted message.
struct CommittedMessage: @unchecked Sendable {
    let envelope: SpoolEnvelope
    /// The content when it is small and was kept in memory (delivery then skips a read).
    let content: [UInt8]?
    var id: String { envelope.id.rawValue }
}
