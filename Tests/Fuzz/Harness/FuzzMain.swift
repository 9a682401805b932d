// libFuzzer entry point for the pure protocol code. Built by Tests/Fuzz/run.sh with
// `swiftc -sanitize=fuzzer,address` straight from the sources under Sources/SmarthostCore
// (SmarthostCore is not a library product of the root package, so a separate package
// cannot depend on it). Pick the target with SMARTHOST_FUZZ_TARGET.
//
// Every target checks invariants and stops the process with `check` when one fails,
// so a violated property is a crash that libFuzzer saves and minimizes.

import Glibc

enum FuzzTarget: String, CaseIterable {
    case command, data, session, reply
}

nonisolated(unsafe) private var selectedTarget: FuzzTarget?

private func target() -> FuzzTarget {
    if let selectedTarget { return selectedTarget }
    guard let name = getenv("SMARTHOST_FUZZ_TARGET").map({ String(cString: $0) }),
          let chosen = FuzzTarget(rawValue: name) else {
        fputs("set SMARTHOST_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n", stderr)
        exit(2)
    }
    selectedTarget = chosen
    return chosen
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    var input = FuzzInput(bytes)
    switch target() {
    case .command: CommandFuzz.run(&input)
    case .data: DataFuzz.run(&input)
    case .session: SessionFuzz.run(&input)
    case .reply: ReplyFuzz.run(&input)
    }
    return 0
}

/// Fails the run with a message: the fuzzer records the input as a crash.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
           file: StaticString = #fileID, line: UInt = #line) {
    guard !condition() else { return }
    fputs("INVARIANT VIOLATED at \(file):\(line): \(message())\n", stderr)
    abort()
}

/// The fuzzer's bytes: a control byte (options), the payload, and a deterministic
/// random stream derived from the whole input for chunk sizes and driver choices,
/// so every mutation also explores another split of the same bytes.
struct FuzzInput {
    let control: UInt8
    /// The payload as a slice of the whole input: its indices do not start at 0,
    /// like the slices the framer and the socket layer hand over.
    let payload: ArraySlice<UInt8>
    private var state: UInt64

    init(_ bytes: [UInt8]) {
        control = bytes.first ?? 0
        payload = bytes.dropFirst()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        state = hash
    }

    /// SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }

    /// A chunk size biased to the small splits where framing bugs hide.
    mutating func chunkSize() -> Int {
        switch below(8) {
        case 0...3: 1 + below(3)
        case 4...6: 1 + below(64)
        default: 1 + below(4096)
        }
    }

    /// `payload` cut into chunks (slices of it, indices preserved).
    mutating func chunks() -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var start = payload.startIndex
        while start < payload.endIndex {
            let end = min(payload.endIndex, start + chunkSize())
            result.append(payload[start..<end])
            start = end
        }
        return result
    }
}

/// True when `bytes` are complete reply lines as RFC 5321 §4.2 has them:
/// `ddd[ -]text CRLF`, one code per multi-line reply, no bare CR or LF.
func isWellFormedReplyStream(_ bytes: [UInt8]) -> Bool {
    guard bytes.count >= 5, bytes.suffix(2) == [13, 10] else { return false }
    var pendingCode: ArraySlice<UInt8>?
    var lines = [ArraySlice<UInt8>]()
    var start = 0
    var index = 0
    while index < bytes.count {
        if bytes[index] == 13 {
            guard index + 1 < bytes.count, bytes[index + 1] == 10 else { return false }
            lines.append(bytes[start..<index])
            index += 2
            start = index
        } else {
            guard bytes[index] != 10 else { return false }
            index += 1
        }
    }
    for line in lines {
        guard line.count >= 4 else { return false }
        let code = line.prefix(3)
        guard (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(code[code.startIndex]),
              code.allSatisfy({ (48...57).contains($0) }) else { return false }
        if let pendingCode, pendingCode != code { return false }
        switch line[line.startIndex + 3] {
        case UInt8(ascii: "-"): pendingCode = code
        case UInt8(ascii: " "): pendingCode = nil
        default: return false
        }
    }
    return pendingCode == nil
}
