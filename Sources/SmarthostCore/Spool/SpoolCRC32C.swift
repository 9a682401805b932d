import CShim

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum iSCSI, ext4 and
/// btrfs use for the same job: catching torn or bit-rotted data. Computed while the message
/// streams in, so the bytes are in cache; the C shim uses the CPU's crc32 instruction where
/// there is one (a byte-at-a-time table here was a quarter of the relay's CPU at 100 KiB).
struct SpoolCRC32C {
    private(set) var state: UInt32 = 0xFFFF_FFFF

    var value: UInt32 { state ^ 0xFFFF_FFFF }

    mutating func update(_ bytes: some Collection<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(buffer)
        }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBufferPointer { update($0) }
        }
    }

    mutating func update(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let base = buffer.baseAddress else { return }
        state = shim_crc32c_update(state, base, buffer.count)
    }

    static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        var crc = SpoolCRC32C()
        crc.update(bytes)
        return crc.value
    }
}
