/// Everything the relay knows about one spooled message besides its bytes: who sent it
/// to whom, which organization and route it belongs to, and how delivery is going.
///
/// The first group of fields is fixed when the message is committed and lives in the
/// message file; the delivery state (`attempts` … `failedAt`) changes on every attempt
/// and lives in the `.state` sidecar (see `SpoolFileFormat`).
public struct SpoolEnvelope: Sendable, Equatable {
    public var id: SpoolID
    /// Unix seconds when DATA completed.
    public var receivedAt: Int64
    /// Envelope sender (MAIL FROM); "" is the null sender `<>`.
    public var sender: String
    public var recipients: [String]
    /// Organization the message was attributed to; nil for the host level.
    public var org: String?
    /// Which settings layer supplied the route: "org", "host" or "default".
    public var layer: String?
    /// The resolved upstream, e.g. "smtp.example:587".
    public var route: String?
    public var heloName: String
    public var clientAddress: String
    /// Content length in bytes; set by the spool at commit from what was written.
    public var size: Int

    // Delivery state.
    public var attempts: Int
    /// Unix seconds before which no new attempt should start; 0 means "now".
    public var nextAttemptAt: Int64
    public var lastError: String?
    /// Recipients an upstream has already accepted: a later attempt skips them, so a
    /// partial delivery is never sent twice to the same mailbox.
    public var doneRecipients: Set<String>
    /// Recipients an upstream refused for good (5xx), with its reply: not tried again, and
    /// the message ends as a dead letter naming them once the others are settled.
    public var refusedRecipients: [String: String]
    /// When the message (re-)entered the queue: `receivedAt`, or the time an operator
    /// ran `queue retry`. Queue lifetime (`max_age`) counts from here.
    public var queuedAt: Int64
    /// Dead letters only: the full reason (step and upstream reply) and when it failed.
    public var failure: String?
    public var failedAt: Int64?
    /// Put on hold by an operator (`queue hold`): kept, never attempted, until released.
    public var held = false
    /// The sender was sent its delay warning (`notices.delay_warning`): never a second one.
    public var delayWarned = false

    public init(id: SpoolID, receivedAt: Int64, sender: String, recipients: [String],
                org: String? = nil, layer: String? = nil, route: String? = nil,
                heloName: String, clientAddress: String, size: Int = 0) {
        self.id = id
        self.receivedAt = receivedAt
        self.sender = sender
        self.recipients = recipients
        self.org = org
        self.layer = layer
        self.route = route
        self.heloName = heloName
        self.clientAddress = clientAddress
        self.size = size
        self.attempts = 0
        self.nextAttemptAt = 0
        self.lastError = nil
        self.doneRecipients = []
        self.refusedRecipients = [:]
        self.queuedAt = receivedAt
        self.failure = nil
        self.failedAt = nil
    }

    /// Recipients still to be delivered, in their original order.
    public var pendingRecipients: [String] {
        recipients.filter { !doneRecipients.contains($0) && refusedRecipients[$0] == nil }
    }
}

// MARK: records

extension SpoolEnvelope {
    /// The immutable part, written into the message file at commit.
    var envelopeRecords: [(String, String)] {
        var records: [(String, String)] = [
            ("id", id.rawValue), ("received", String(receivedAt)), ("sender", sender),
        ]
        records += recipients.map { ("rcpt", $0) }
        if let org { records.append(("org", org)) }
        if let layer { records.append(("layer", layer)) }
        if let route { records.append(("route", route)) }
        records += [("helo", heloName), ("client", clientAddress), ("size", String(size))]
        return records
    }

    /// Rebuilds an envelope from the message file's records; nil if a required field is
    /// missing or the id inside does not match the file name.
    init?(id: SpoolID, records: [(String, String)]) {
        var values: [String: String] = [:]
        var recipients: [String] = []
        for (key, value) in records {
            if key == "rcpt" { recipients.append(value) } else { values[key] = value }
        }
        guard values["id"] == id.rawValue,
              let received = values["received"].flatMap({ Int64($0) }),
              let sender = values["sender"], let helo = values["helo"], let client = values["client"],
              let size = values["size"].flatMap({ Int($0) }) else { return nil }
        self.init(id: id, receivedAt: received, sender: sender, recipients: recipients,
                  org: values["org"], layer: values["layer"], route: values["route"],
                  heloName: helo, clientAddress: client, size: size)
    }

    /// The mutable part, written into the `.state` sidecar.
    var stateRecords: [(String, String)] {
        var records: [(String, String)] = [
            ("attempts", String(attempts)), ("next", String(nextAttemptAt)), ("queued", String(queuedAt)),
        ]
        if let lastError { records.append(("error", lastError)) }
        records += doneRecipients.sorted().map { ("done", $0) }
        // A mailbox never holds a tab (RFC 5321 qtextSMTP/quoted-pairSMTP), so it separates.
        records += refusedRecipients.keys.sorted().map { ("refused", $0 + "\t" + refusedRecipients[$0]!) }
        if let failure { records.append(("failure", failure)) }
        if let failedAt { records.append(("failed", String(failedAt))) }
        if held { records.append(("held", "1")) }
        if delayWarned { records.append(("warned", "1")) }
        return records
    }

    /// Applies a state sidecar; false (and no change) if a number does not parse.
    mutating func applyState(_ records: [(String, String)]) -> Bool {
        var copy = self
        copy.doneRecipients = []
        copy.refusedRecipients = [:]
        for (key, value) in records {
            switch key {
            case "attempts": guard let number = Int(value) else { return false }; copy.attempts = number
            case "next": guard let number = Int64(value) else { return false }; copy.nextAttemptAt = number
            case "queued": guard let number = Int64(value) else { return false }; copy.queuedAt = number
            case "failed": guard let number = Int64(value) else { return false }; copy.failedAt = number
            case "error": copy.lastError = value
            case "done": copy.doneRecipients.insert(value)
            case "refused":
                let parts = value.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
                copy.refusedRecipients[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            case "failure": copy.failure = value
            case "held": copy.held = value == "1"
            case "warned": copy.delayWarned = value == "1"
            default: continue  // written by a newer version; keep reading
            }
        }
        self = copy
        return true
    }
}
