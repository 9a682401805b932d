/// `notices:` — failure notices (RFC 3464) for dead letters, and delay warnings
/// (product.md §7.3). The org level has only `copy_to` (`orgs.<id>.notices.copy_to`).
public struct NoticeSettings: Sendable, Equatable {
    /// Tell the envelope sender when its message becomes a dead letter.
    public var bounceSender = true
    /// Warn the sender once when a message is still queued this long after it arrived;
    /// 0 is off.
    public var delayWarningMs: Int64 = 0
    /// Also send every notice here (an operator's address).
    public var copyTo: String?

    public init() {}
}

extension RelayConfig.Schema {
    static let noticeKeys = ["bounce_sender", "delay_warning", "copy_to"]

    mutating func decodeNotices(_ field: RelayConfig.Field) -> NoticeSettings {
        var notices = NoticeSettings()
        guard let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: Self.noticeKeys)
        else { return notices }
        if let f = section.field("bounce_sender"), let v = reader.bool(f) { notices.bounceSender = v }
        if let f = section.field("delay_warning") {
            // "0" and "off" say what the default is; anything else is a duration.
            if let text = f.node.string, text == "0" || text == "off" {
                notices.delayWarningMs = 0
            } else if let v = reader.duration(f) {
                notices.delayWarningMs = v
            }
        }
        if let f = section.field("copy_to") { notices.copyTo = decodeNoticeAddress(f) }
        return notices
    }

    /// `orgs.<id>.notices: { copy_to: … }`.
    mutating func decodeOrgNotices(_ org: RelayConfig.Section) -> String? {
        guard let field = org.field("notices"),
              let section = reader.section(field.node, path: field.path, line: field.keyLine, allowed: ["copy_to"]),
              let copyTo = section.field("copy_to") else { return nil }
        return decodeNoticeAddress(copyTo)
    }

    private mutating func decodeNoticeAddress(_ field: RelayConfig.Field) -> String? {
        guard let text = reader.string(field) else { return nil }
        guard (try? MailPath.parse(Array("<\(text)>".utf8)[...], role: .forwardPath, utf8Allowed: true)) != nil else {
            reader.report(field.line, field.path, "\(text) is not a mail address")
            return nil
        }
        return text
    }
}
