import Foundation
@testable import SmarthostCore

/// Reads what a relay kept in its spool, through the spool's own reader (which validates
/// the end marker), for end-to-end assertions.
struct SpoolInspector {
    struct Kept {
        var id: String
        var sender: String
        var recipients: [String]
        var content: String
        var org: String?
        var layer: String?
        var attempts: Int = 0
        var lastError: String?
        var failure: String?

        /// The message as the client sent it: everything after our `Received:` header.
        var contentAfterReceived: String {
            var lines = content.components(separatedBy: "\r\n")
            guard let first = lines.first, first.hasPrefix("Received:") else { return content }
            lines.removeFirst()
            while let next = lines.first, next.hasPrefix(" ") || next.hasPrefix("\t") { lines.removeFirst() }
            return lines.joined(separator: "\r\n")
        }
    }

    var path: String

    func messages() throws -> [Kept] {
        try messages(in: .queue)
    }

    /// Dead letters under `failed/`.
    func deadLetters() throws -> [Kept] {
        try messages(in: .failed)
    }

    func messages(in area: SpoolArea) throws -> [Kept] {
        let spool = try Spool(root: path, minimumFreeBytes: 0)
        defer { spool.shutdown() }
        return try spool.list(area).map { envelope in
            let bytes = (try? spool.readMessage(envelope.id)) ?? []
            return Kept(id: envelope.id.rawValue, sender: envelope.sender, recipients: envelope.recipients,
                        content: String(decoding: bytes, as: UTF8.self), org: envelope.org, layer: envelope.layer,
                        attempts: envelope.attempts, lastError: envelope.lastError, failure: envelope.failure)
        }
    }
}
