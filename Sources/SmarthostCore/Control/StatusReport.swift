/// What `smarthost status` prints, from the daemon's STATUS and ROUTES answers and the
/// spool itself (a stopped relay still shows its queue).
public enum StatusReport {
    public static func text(version: String, status: ControlStatus?, routes: [ControlRouteDown],
                            slowed: [ControlRouteSlowed] = [],
                            summary: [QueueSummary.Row], deadLetters: Int, quarantined: Int) -> String {
        var out: [String] = []
        if let status, status.pid > 0 {
            out.append("smarthost \(version): running (pid \(status.pid)), up \(QueueReport.duration(Int64(status.uptimeSeconds)))")
            out.append("since start: \(status.delivered) delivered, \(status.failed) failed")
        } else {
            out.append("smarthost \(version): not running (the queue below is read from the spool)")
        }
        let total = summary.first?.total ?? 0
        let oldest = summary.first.map { $0.total > 0 ? ", oldest " + QueueReport.duration($0.oldestSeconds) : "" } ?? ""
        var queueLine = "queue: \(total) message\(total == 1 ? "" : "s")\(oldest)"
        if let status, status.pid > 0 {
            queueLine += " (\(status.deferred) deferred, \(status.inFlight) in delivery, \(status.held) held, "
                + "\(status.awaitingCredentials) awaiting credentials)"
        }
        if let refusal = status?.refusingMail, status?.pid ?? 0 > 0 {
            out.append("\(refusal): every message gets 452 4.3.1")
        }
        out.append(queueLine)
        out.append("dead letters: \(deadLetters); quarantined: \(quarantined)")
        if routes.isEmpty {
            out.append("routes down: none")
        } else {
            out.append("routes down:")
            for route in routes {
                out.append("  \(TerminalText.escaped(route.label)) for \(QueueReport.duration(route.downSeconds)), "
                    + "next try in \(QueueReport.duration(route.retryInSeconds)): \(TerminalText.escaped(route.error))")
            }
        }
        // Only from a running daemon, and only when it matters: a slowed route is not a fault.
        if !slowed.isEmpty {
            out.append("routes slowed by throttling:")
            for route in slowed {
                out.append("  \(TerminalText.escaped(route.label)): \(route.pace)")
            }
        }
        if total > 0 {
            out.append("")
            out.append(QueueSummary.text(summary).trimmingSuffixNewline)
        }
        return out.joined(separator: "\n") + "\n"
    }

    public static func json(status: ControlStatus?, routes: [ControlRouteDown], slowed: [ControlRouteSlowed] = [],
                            summary: [QueueSummary.Row], deadLetters: Int, quarantined: Int) -> String {
        let running = status.map { $0.pid > 0 } ?? false
        var fields = ["\"running\": \(running)"]
        if let status, running {
            fields += ["\"pid\": \(status.pid)", "\"uptime_seconds\": \(status.uptimeSeconds)",
                       "\"delivered\": \(status.delivered)", "\"failed\": \(status.failed)",
                       "\"deferred\": \(status.deferred)", "\"in_delivery\": \(status.inFlight)", "\"held\": \(status.held)",
                       "\"awaiting_credentials\": \(status.awaitingCredentials)"]
            fields.append("\"refusing_mail\": " + (status.refusingMail.map {
                "{\"reason\": \"min_free_space\", \"spool_free_bytes\": \($0.freeBytes), \"min_free_space_bytes\": \($0.floorBytes)}"
            } ?? "null"))
        }
        fields += ["\"dead_letters\": \(deadLetters)", "\"quarantined\": \(quarantined)"]
        fields.append("\"routes_down\": [" + routes.map {
            "{\"upstream\": \(QueueReport.string($0.upstream)), \"down_seconds\": \($0.downSeconds), "
                + "\"retry_in_seconds\": \($0.retryInSeconds), \"error\": \(QueueReport.string($0.error))"
                + Self.orgsField($0.orgs) + "}"
        }.joined(separator: ", ") + "]")
        fields.append("\"routes_slowed\": [" + slowed.map {
            "{\"route\": \(QueueReport.string($0.route)), \"messages_per_second\": \($0.messagesPerSecond.map { "\($0)" } ?? "null"), "
                + "\"connections\": \($0.connections)" + Self.orgsField($0.orgs) + "}"
        }.joined(separator: ", ") + "]")
        fields.append("\"queue\": " + QueueSummary.json(summary).trimmingSuffixNewline)
        return "{" + fields.joined(separator: ", ") + "}\n"
    }

    /// `, "orgs": [...]` when the route's orgs tell it apart from another of the same name.
    private static func orgsField(_ orgs: [String]) -> String {
        orgs.isEmpty ? "" : ", \"orgs\": [" + orgs.map(QueueReport.string).joined(separator: ", ") + "]"
    }
}

extension String {
    var trimmingSuffixNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
