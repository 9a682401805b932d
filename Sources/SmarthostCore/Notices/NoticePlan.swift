/// Whether a message's trouble becomes a notice, to whom, and what it says — decided in
/// one place from the configuration (`notices:`) and the message's envelope.
///
/// - Never for the null sender: a notice is sent from `<>`, so a notice that fails in turn
///   is a dead letter and nothing more (RFC 3464 §2, RFC 5321 §4.5.5: no loops).
/// - To the envelope sender when `notices.bounce_sender` (default true), and to the
///   `copy_to` of the message's org, or else of the host level (org > host, as every
///   setting), when one is set.
/// - Routed like the original: same org, so the org's route (and its `from`) carries it.
public struct NoticePlan: Sendable, Equatable {
    public var notice: DeliveryStatusNotice
    /// The notice's envelope recipients.
    public var recipients: [String]
    public var org: String?

    public static func recipients(for envelope: SpoolEnvelope, config: RelayConfig) -> [String] {
        guard !envelope.sender.isEmpty else { return [] }
        var recipients: [String] = []
        if config.notices.bounceSender { recipients.append(envelope.sender) }
        let copy = envelope.org.flatMap { config.org($0)?.noticesCopyTo } ?? config.notices.copyTo
        if let copy, !recipients.contains(where: { $0.lowercased() == copy.lowercased() }) { recipients.append(copy) }
        return recipients
    }

    /// The failure notice for a message that just became a dead letter: a block for every
    /// recipient not delivered, with its own refusal, else `reason` (expiry, a refused
    /// transaction). nil when nobody is to be told.
    public static func failure(for envelope: SpoolEnvelope, reason: String, remoteMTA: String?, config: RelayConfig,
                               content: [UInt8]?, nowUnixSeconds: Int, token: String) -> NoticePlan? {
        let failed = envelope.recipients.filter { !envelope.doneRecipients.contains($0) }
        return make(.failure, envelope: envelope, about: failed, reason: reason, remoteMTA: remoteMTA, config: config,
                    content: content, nowUnixSeconds: nowUnixSeconds, token: token)
    }

    /// The delay warning: the recipients still pending, with the latest reason.
    public static func delay(for envelope: SpoolEnvelope, reason: String, remoteMTA: String?, config: RelayConfig,
                             content: [UInt8]?, nowUnixSeconds: Int, token: String) -> NoticePlan? {
        make(.delay, envelope: envelope, about: envelope.pendingRecipients, reason: reason, remoteMTA: remoteMTA,
             config: config, content: content, nowUnixSeconds: nowUnixSeconds, token: token)
    }

    /// Whether the delay warning is due for a message still queued after an attempt.
    public static func delayWarningDue(for envelope: SpoolEnvelope, config: RelayConfig, nowMilliseconds: Int64) -> Bool {
        let after = config.notices.delayWarningMs
        return after > 0 && !envelope.sender.isEmpty && nowMilliseconds - envelope.receivedAt * 1000 >= after
    }

    private static func make(_ kind: DeliveryStatusNotice.Kind, envelope: SpoolEnvelope, about addresses: [String],
                             reason: String, remoteMTA: String?, config: RelayConfig, content: [UInt8]?,
                             nowUnixSeconds: Int, token: String) -> NoticePlan? {
        let to = recipients(for: envelope, config: config)
        guard !to.isEmpty, !addresses.isEmpty else { return nil }
        let blocks = addresses.map { address in
            let diagnostic = envelope.refusedRecipients[address] ?? reason
            return DeliveryStatusNotice.Recipient(
                address: address, status: DeliveryStatusNotice.status(in: diagnostic, kind: kind),
                diagnostic: diagnostic, remoteMTA: remoteMTA)
        }
        // The org header never leaves the machine, not even inside a notice. The body goes
        // back only in a failure notice to the sender alone (see `NoticeOriginal`).
        let stripped = content.map {
            UpstreamMessageRewriter.rewrite($0, removingHeader: config.orgHeader, from: nil, mode: .fill).message
        } ?? []
        let withBody = kind == .failure && to == [envelope.sender]
        let notice = DeliveryStatusNotice(
            kind: kind, to: envelope.sender, reportingMTA: config.hostname, queueID: envelope.id.rawValue,
            arrivalUnixSeconds: envelope.receivedAt, recipients: blocks,
            original: NoticeOriginal.choose(from: stripped, withBody: withBody),
            nowUnixSeconds: nowUnixSeconds, token: token)
        return NoticePlan(notice: notice, recipients: to, org: envelope.org)
    }
}
