extension RelayConfig {
    /// Numbers with units as operators write them: durations (`500ms`, `180s`, `3m`, `1h`,
    /// `5d`) and sizes (`35MiB`, `10MB`, `512KiB`, plain bytes). Every result is checked
    /// for overflow, so `99999999999d` is an error rather than a negative timeout.
    enum Units {
        /// Milliseconds in one unit of each duration suffix.
        private static let durationUnits: [(suffix: String, ms: Int64)] = [
            ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
        ]

        /// Bytes in one unit of each size suffix; decimal (`MB`) and binary (`MiB`) both exist
        /// in the wild, and mixing them up silently is a 5% error on a size limit.
        private static let sizeUnits: [(suffix: String, bytes: Int64)] = [
            ("b", 1),
            ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000),
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30),
        ]

        /// A non-negative decimal integer; `_` may separate digits (`180_000`).
        static func integer(_ text: String) -> Int64? {
            var value: Int64 = 0
            var sawDigit = false
            var lastWasSeparator = false
            for char in text {
                if char == "_" {
                    guard sawDigit, !lastWasSeparator else { return nil }
                    lastWasSeparator = true
                    continue
                }
                guard let digit = char.wholeNumberValue, char.isASCII else { return nil }
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(Int64(digit))
                guard !o1, !o2 else { return nil }
                value = sum
                sawDigit = true
                lastWasSeparator = false
            }
            return sawDigit && !lastWasSeparator ? value : nil
        }

        /// A duration in milliseconds. A bare integer counts in `bareUnitMilliseconds`
        /// (seconds for most keys; milliseconds for a route `timeout`, as the product's
        /// mail-settings pages give it, e.g. 180000).
        static func milliseconds(_ text: String, bareUnitMilliseconds: Int64) -> Int64? {
            scaled(text, units: durationUnits, bare: bareUnitMilliseconds)
        }

        /// A size in bytes.
        static func bytes(_ text: String) -> Int64? {
            scaled(text, units: sizeUnits, bare: 1)
        }

        /// Splits `<integer>[ ]<suffix>` and multiplies; the suffix is case-insensitive.
        private static func scaled(_ text: String, units: [(String, Int64)], bare: Int64) -> Int64? {
            let trimmed = text.trimmingSpaces
            let digitsEnd = trimmed.firstIndex { !($0.isASCII && ($0.isNumber || $0 == "_")) } ?? trimmed.endIndex
            guard let number = integer(String(trimmed[..<digitsEnd])) else { return nil }
            let suffix = String(trimmed[digitsEnd...]).trimmingSpaces.lowercased()
            let factor: Int64
            if suffix.isEmpty {
                factor = bare
            } else if let unit = units.first(where: { $0.0 == suffix }) {
                factor = unit.1
            } else {
                return nil
            }
            let (result, overflow) = number.multipliedReportingOverflow(by: factor)
            return overflow ? nil : result
        }

        /// `300000` → `5m`, `1500` → `1500ms`: the largest unit that is exact, for reports.
        static func formatMilliseconds(_ ms: Int64) -> String {
            for (suffix, unit) in durationUnits.reversed() where ms != 0 && ms % unit == 0 {
                return "\(ms / unit)\(suffix)"
            }
            return "\(ms)ms"
        }

        /// `36700160` → `35MiB`: binary units when exact, else plain bytes.
        static func formatBytes(_ bytes: Int64) -> String {
            for (suffix, unit) in [("GiB", Int64(1) << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
            where bytes != 0 && bytes % unit == 0 {
                return "\(bytes / unit)\(suffix)"
            }
            return "\(bytes)"
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs; no Foundation in the core module.
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
