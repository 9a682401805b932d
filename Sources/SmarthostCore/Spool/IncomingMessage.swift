import Glibc

/// A message being received: an open file that DATA is streamed into, `tmp/<id>` or a
/// reused `spare/<old id>` (committed as `queue/<id>` either way).
///
/// Owned by the event-loop thread and not `Sendable`: `append` only copies into a
/// 64 KiB buffer and, when it is full, calls write(2), which lands in the page cache
/// and never waits for the disk. Durability is the committer thread's job. A write
/// failure does not throw: the session has to read DATA to its end anyway before it
/// can answer, so the first error is kept (`failure`), later bytes are dropped, and
/// `Spool.commit` reports it with the tmp file removed.
public final class IncomingMessage {
    public let id: SpoolID
    let path: String
    private(set) var fd: Int32
    private var buffer: [UInt8] = []
    private let headerLength: Int
    /// The reused file's old length; 0 for a new file.
    private let staleLength: Int
    /// Nothing has been written to the file yet: the whole content is still in `buffer`.
    private var onlyInMemory = true
    private var crc = SpoolCRC32C()
    /// Content bytes appended so far (the header is not counted).
    public private(set) var contentLength = 0
    /// The first error met while writing; once set, the message can only fail.
    public private(set) var failure: SpoolError?

    static let bufferSize = 64 * 1024

    init(id: SpoolID, path: String, fd: Int32, staleLength: Int = 0) {
        self.id = id
        self.path = path
        self.fd = fd
        self.staleLength = staleLength
        buffer.reserveCapacity(IncomingMessage.bufferSize)
        let header = SpoolFileFormat.header(id)
        headerLength = header.count
        buffer += header
    }

    deinit {
        // Dropped without commit or abort (e.g. the client vanished): leave nothing behind.
        abort()
    }

    /// Adds content bytes: CRLF line ends, already dot-unstuffed.
    public func append(_ bytes: some Collection<UInt8>) {
        guard fd >= 0, failure == nil else { return }
        crc.update(bytes)
        contentLength += bytes.count
        if buffer.count + bytes.count > IncomingMessage.bufferSize {
            flush()
        }
        if bytes.count >= IncomingMessage.bufferSize {
            writeDirect(bytes)
        } else {
            buffer += bytes
        }
    }

    /// Gives up on the message: closes and unlinks the tmp file. Safe to call twice.
    public func abort() {
        guard fd >= 0 else { return }
        if unlink(path) != 0 { _ = ftruncate(fd, 0) }  // see SpoolCommitter.makeDurable
        Syscall.close(fd)
        fd = -1
        buffer = []
    }

    /// A copy of the content while it is small enough to have stayed in the write buffer
    /// (under 64 KiB), so delivery can start without reading the file back; nil otherwise.
    public var contentInMemory: [UInt8]? {
        guard fd >= 0, failure == nil, onlyInMemory else { return nil }
        return Array(buffer[headerLength...])
    }

    /// Passes the file to the committer: the rest of the buffer, the envelope record and
    /// the end marker are written there, off the event loop. `truncateTo` is the file's
    /// final length when a reused file held more than that.
    func handOff(envelope: SpoolEnvelope) -> (fd: Int32, tail: [UInt8], truncateTo: Int?, failure: SpoolError?) {
        precondition(fd >= 0, "IncomingMessage committed after abort or a second commit")
        var envelope = envelope
        envelope.id = id
        envelope.size = contentLength
        let record = SpoolRecord.encode(envelope.envelopeRecords)
        var tail = buffer
        tail += record
        let trailer = SpoolFileFormat.trailer(contentLength: contentLength, contentCRC: crc.value, envelope: record)
        tail += trailer
        let finalLength = headerLength + contentLength + record.count + trailer.count
        let handed = (fd, tail, staleLength > finalLength ? finalLength : nil, failure)
        fd = -1
        buffer = []
        return handed
    }

    private func flush() {
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        writeDirect(pending)
    }

    private func writeDirect(_ bytes: some Collection<UInt8>) {
        onlyInMemory = false
        let outcome: SpoolError?? = bytes.withContiguousStorageIfAvailable { buffer in
            do throws(SpoolError) {
                try Syscall.write(fd, UnsafeRawBufferPointer(buffer), path: path)
            } catch {
                return error
            }
            return nil
        }
        switch outcome {
        case .some(.some(let error)): failure = error
        case .some(.none): break
        case .none: writeDirect(Array(bytes))
        }
    }
}
