// Certificates for TLS tests, made with the `openssl` CLI in a temporary
// directory once per test process (EC P-256 keeps it well under a second).
// Any suite may use them, in memory or against a real upstream such as
// aiosmtpd: `TestCertificates.shared.localhost.certificate` etc.
import Foundation

struct TestCertificates: Sendable {
    /// A certificate and its private key, both PEM files.
    struct Identity: Sendable {
        let certificate: String
        let key: String
    }

    /// The directory everything was written to.
    let directory: String
    /// The test CA ("Smarthost Test CA"): the ca_file that trusts the leaves below.
    let caCertificate: String
    /// CA-signed, CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1.
    let localhost: Identity
    /// The same leaf followed by the CA, for servers that send a full chain.
    let localhostChain: String
    /// CA-signed, valid, but only for wrong.example (SAN DNS:wrong.example).
    let wrongHost: Identity
    /// Self-signed, CN/SAN localhost: untrusted unless given as ca_file.
    let selfSigned: Identity
    /// CA-signed for localhost, valid 2020-01-01 to 2021-01-01.
    let expired: Identity
    /// CA-signed for localhost, valid from 2090.
    let notYetValid: Identity

    /// Generated on first use; a failure here is a broken test machine.
    static let shared: TestCertificates = {
        do {
            let certificates = try TestCertificates(generatingIn: makeTemporaryDirectory())
            atexit { try? FileManager.default.removeItem(atPath: TestCertificates.shared.directory) }
            return certificates
        } catch {
            fatalError("cannot generate test certificates: \(error)")
        }
    }()

    private static let localhostNames = "DNS:localhost,IP:127.0.0.1,IP:::1"

    init(generatingIn directory: String) throws {
        let gen = Generator(directory: directory)
        self.directory = directory
        caCertificate = try gen.certificateAuthority()
        localhost = try gen.leaf("localhost", names: Self.localhostNames)
        localhostChain = try gen.concatenate([localhost.certificate, caCertificate], into: "localhost-chain.pem")
        wrongHost = try gen.leaf("wrong.example", names: "DNS:wrong.example", file: "wrong-host")
        selfSigned = try gen.selfSigned("localhost", names: Self.localhostNames)
        expired = try gen.caSigned("localhost", names: Self.localhostNames, file: "expired",
                                   from: "20200101000000Z", to: "20210101000000Z")
        notYetValid = try gen.caSigned("localhost", names: Self.localhostNames, file: "not-yet-valid",
                                       from: "20900101000000Z", to: "20910101000000Z")
    }

    private static func makeTemporaryDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("smarthost-test-certs-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }
}

/// Runs `openssl` in one directory; every method returns absolute paths.
private struct Generator {
    let directory: String
    private let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    func path(_ name: String) -> String { directory + "/" + name }

    func certificateAuthority() throws -> String {
        try openssl(["req", "-x509"] + newKey + [
            "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "3650",
            "-subj", "/CN=Smarthost Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        return path("ca.pem")
    }

    /// A CA-signed leaf valid from now for ten years.
    func leaf(_ commonName: String, names: String, file: String? = nil) throws -> TestCertificates.Identity {
        let base = file ?? commonName
        let csr = try request(commonName, base: base)
        try openssl(["x509", "-req", "-in", csr, "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                     "-set_serial", String(UInt32.random(in: 1...UInt32.max)), "-days", "3650",
                     "-extfile", try extensions(names, base: base), "-out", path(base + ".pem")])
        return .init(certificate: path(base + ".pem"), key: path(base + ".key"))
    }

    /// A CA-signed leaf with explicit validity dates. `openssl x509` in
    /// OpenSSL 3.0 cannot set past dates (-not_before came in 3.4), so this
    /// goes through `openssl ca`, which needs a small database.
    func caSigned(_ commonName: String, names: String, file base: String,
                  from start: String, to end: String) throws -> TestCertificates.Identity {
        let csr = try request(commonName, base: base)
        let config = try caDatabase()
        try openssl(["ca", "-batch", "-notext", "-config", config, "-cert", path("ca.pem"),
                     "-keyfile", path("ca.key"), "-in", csr, "-out", path(base + ".pem"),
                     "-startdate", start, "-enddate", end, "-extfile", try extensions(names, base: base)])
        return .init(certificate: path(base + ".pem"), key: path(base + ".key"))
    }

    func selfSigned(_ commonName: String, names: String) throws -> TestCertificates.Identity {
        try openssl(["req", "-x509"] + newKey + [
            "-keyout", path("self-signed.key"), "-out", path("self-signed.pem"), "-days", "3650",
            "-subj", "/CN=\(commonName)", "-addext", "subjectAltName=\(names)",
        ])
        return .init(certificate: path("self-signed.pem"), key: path("self-signed.key"))
    }

    func concatenate(_ files: [String], into name: String) throws -> String {
        let contents = try files.map { try String(contentsOfFile: $0, encoding: .utf8) }
        try contents.joined().write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }

    private func request(_ commonName: String, base: String) throws -> String {
        try openssl(["req", "-new"] + newKey + [
            "-keyout", path(base + ".key"), "-out", path(base + ".csr"), "-subj", "/CN=\(commonName)",
        ])
        return path(base + ".csr")
    }

    private func extensions(_ names: String, base: String) throws -> String {
        let text = """
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature
            extendedKeyUsage=serverAuth
            subjectAltName=\(names)

            """
        try text.write(toFile: path(base + ".ext"), atomically: true, encoding: .utf8)
        return path(base + ".ext")
    }

    /// The minimal `openssl ca` configuration; created on first use.
    private func caDatabase() throws -> String {
        let config = path("ca.cnf")
        if FileManager.default.fileExists(atPath: config) { return config }
        try FileManager.default.createDirectory(atPath: path("issued"), withIntermediateDirectories: true)
        try "".write(toFile: path("index.txt"), atomically: true, encoding: .utf8)
        try "1000\n".write(toFile: path("serial"), atomically: true, encoding: .utf8)
        let text = """
            [ca]
            default_ca = test
            [test]
            database = \(path("index.txt"))
            new_certs_dir = \(path("issued"))
            serial = \(path("serial"))
            default_md = sha256
            policy = any
            unique_subject = no
            [any]
            commonName = supplied

            """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let arguments: [String]
        let output: String
        var description: String { "openssl \(arguments.joined(separator: " ")) failed: \(output)" }
    }

    @discardableResult
    private func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CommandFailed(arguments: arguments, output: output) }
        return output
    }
}
