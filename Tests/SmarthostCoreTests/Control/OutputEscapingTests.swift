import Foundation
import Logging
import Testing
@testable import SmarthostCore

/// Issue 19 item 8: every C0, DEL, C1 and bidi control is escaped in each output kind —
/// the terminal (`queue list`/`show`), JSON (`queue list --json`), line log values and
/// every journal field — one escaping function per kind, tested with each class.
@Suite struct OutputEscapingTests {
    /// One sample per class, and what each output kind makes of it.
    static let samples: [(scalar: String, unsafe: TerminalText.UnsafeClass, terminal: String, json: String)] = [
        ("\u{1B}", .c0, "\\x1b", "\\u001b"), ("\u{07}", .c0, "\\x07", "\\u0007"),
        ("\u{7F}", .delete, "\\x7f", "\\u007f"),
        ("\u{85}", .c1, "\\x85", "\\u0085"), ("\u{9B}", .c1, "\\x9b", "\\u009b"),
        ("\u{202A}", .bidi, "\\u202a", "\\u202a"), ("\u{202E}", .bidi, "\\u202e", "\\u202e"),
        ("\u{2066}", .bidi, "\\u2066", "\\u2066"), ("\u{2069}", .bidi, "\\u2069", "\\u2069"),
        ("\u{200E}", .bidi, "\\u200e", "\\u200e"), ("\u{200F}", .bidi, "\\u200f", "\\u200f"),
        ("\u{061C}", .bidi, "\\u061c", "\\u061c"),
    ]

    @Test func eachClassIsRecognisedAndPlainTextIsNot() {
        for sample in Self.samples {
            #expect(TerminalText.unsafeClass(sample.scalar.unicodeScalars.first!) == sample.unsafe, "\(sample.terminal)")
        }
        for plain in ["a", " ", "~", "\u{A0}", "\u{E9}", "\u{2029}", "\u{202F}", "\u{2065}", "\u{1F600}"] {
            #expect(TerminalText.unsafeClass(plain.unicodeScalars.first!) == nil, "\(plain.unicodeScalars.first!.value)")
        }
    }

    @Test func terminalEscapesEveryClass() {
        for sample in Self.samples {
            #expect(TerminalText.escaped("a\(sample.scalar)b") == "a\(sample.terminal)b")
        }
        let row = QueueReport.row(Self.envelope(), area: .queue, now: 1_763_847_700)
        #expect(row.allSatisfy { $0.unicodeScalars.allSatisfy { TerminalText.unsafeClass($0) == nil } }, "\(row)")
        #expect(row.contains("<evil\\u202egnp.exe\\x9b@acme.example>"))
        let shown = QueueReport.show(Self.envelope(), message: Array("Subject: \u{1B}]0;owned\u{07} \u{202E}fdp.exe \u{85}x\r\n\r\nb\r\n".utf8),
                                     now: 1_763_847_700)
        #expect(shown.unicodeScalars.allSatisfy { $0 == "\n" || TerminalText.unsafeClass($0) == nil })
        #expect(shown.contains("\\u202efdp.exe \\x85x"))
    }

    @Test func jsonEscapesEveryClassAsUnicodeEscapes() throws {
        for sample in Self.samples {
            #expect(QueueReport.string("a\(sample.scalar)b") == "\"a\(sample.json)b\"")
        }
        #expect(QueueReport.string("\"\\\n\r\t") == "\"\\\"\\\\\\n\\r\\t\"")
        let text = QueueReport.json([Self.envelope()], area: .queue)
        #expect(text.unicodeScalars.allSatisfy { $0 == "\n" || TerminalText.unsafeClass($0) == nil })
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        #expect(parsed.first?["sender"] as? String == Self.envelope().sender, "escapes decode to the original")
    }

    @Test func logValuesAndEveryJournalFieldEscapeEveryClass() {
        for sample in Self.samples {
            #expect(LogText.escaped("a\(sample.scalar)b") == "a\(sample.terminal)b")
            #expect(LineLogHandler.quoted("a\(sample.scalar)b") == "\"a\(sample.terminal)b\"")
        }
        #expect(LogText.escaped("a\nb\\c") == "a\\nb\\\\c")
        #expect(LineLogHandler.quoted("plain") == "plain" && LineLogHandler.quoted("two words") == "\"two words\"")
        let hostile = "451 4.3.0 \u{1B}[31mred\u{9B}2J \u{202E}txt.exe\n<6>forged line"
        let fields = JournalFields.make(level: .warning, message: "deferred \u{202E}", metadata: [
            "id": "q1", "attempts": "1", "route": "r\u{1B}:25", "reason": "\(hostile)", "from": "<evil\u{202E}@x>",
        ])
        for field in fields {
            #expect(field.value.unicodeScalars.allSatisfy { TerminalText.unsafeClass($0) == nil }, "\(field.name)=\(field.value)")
        }
        let byName = Dictionary(fields.map { ($0.name, $0.value) }) { a, _ in a }
        #expect(byName["SMARTHOST_REASON"] == "451 4.3.0 \\x1b[31mred\\x9b2J \\u202etxt.exe\\n<6>forged line")
        #expect(byName["UPSTREAM"] == "r\\x1b:25" && byName["ROUTE"] == "r\\x1b:25")
        #expect(byName["SMARTHOST_EVENT"] == "deferred \\u202e")
        #expect(byName["DSN"] == "4.3.0")
        #expect(byName["MESSAGE"]?.contains("reason=\"451 4.3.0 \\x1b[31mred\\x9b2J \\u202etxt.exe\\n<6>forged line\"") == true)
    }

    static func envelope() -> SpoolEnvelope {
        var envelope = SpoolEnvelope(id: SpoolID("1k1pyt96mqh0008vfa")!, receivedAt: 1_763_847_621,
                                     sender: "evil\u{202E}gnp.exe\u{9B}@acme.example", recipients: ["r\u{1B}@example.com"],
                                     org: "ac\u{2066}me", heloName: "app.local", clientAddress: "127.0.0.1")
        envelope.lastError = "451 \u{1B}[2J\u{85}\u{200F}"
        return envelope
    }
}
