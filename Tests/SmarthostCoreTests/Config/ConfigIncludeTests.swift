import Foundation
import Testing
@testable import SmarthostCore

/// `include:` — orgs from generated files, one file per org or per customer.
@Suite struct ConfigIncludeTests {
    private func write(_ dir: String, _ name: String, _ text: String) {
        try? FileManager.default.createDirectory(atPath: (dir + "/" + name as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        ConfigTestSupport.writeFile(dir + "/" + name, text, mode: 0o640)
    }

    private let main = """
        default:
          host: smtp.example.com
          port: 587
        orgs:
          acme:
            use: default
        include: ["orgs.d/*.yaml"]
        """

    @Test func includedFilesAddOrgsInNameOrderAfterTheMainFile() throws {
        let dir = ConfigTestSupport.makeTempDirectory()
        write(dir, "smarthost.yaml", main)
        write(dir, "orgs.d/20-globex.yaml", "orgs:\n  globex:\n    use: default\n    senders: [\"*@globex.example\"]\n")
        write(dir, "orgs.d/10-initech.yaml", """
            orgs:
              initech:
                host: smtp.initech.example
                port: 465
              umbrella:
                use: default
            """)
        write(dir, "orgs.d/notes.txt", "not yaml: [")
        let config = try RelayConfig.load(path: dir + "/smarthost.yaml", environment: [:])
        #expect(config.orgs.map(\.id) == ["acme", "initech", "umbrella", "globex"])
        #expect(RouteResolver.resolve(org: "initech", config: config).settings.endpoint == "smtp.initech.example:465")
        #expect(OrgClassifier(config: config).classify(headerValue: nil, sender: "x@globex.example").orgID == "globex")

        // A reload reads the directory again: a removed file's org is gone.
        try FileManager.default.removeItem(atPath: dir + "/orgs.d/20-globex.yaml")
        #expect(try RelayConfig.load(path: dir + "/smarthost.yaml", environment: [:]).orgs.map(\.id) == ["acme", "initech", "umbrella"])
    }

    @Test func errorsNameTheIncludedFileAndLine() {
        let dir = ConfigTestSupport.makeTempDirectory()
        write(dir, "smarthost.yaml", main)
        write(dir, "orgs.d/a.yaml", "orgs:\n  beta:\n    host: smtp.beta.example\n    port: 99999\n")
        write(dir, "orgs.d/b.yaml", "orgs:\n  acme:\n    use: default\nlisten: [\"0.0.0.0:25\"]\n")
        do {
            _ = try RelayConfig.load(path: dir + "/smarthost.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let text = error.description
            #expect(text.contains("\(dir)/orgs.d/a.yaml: line 4: orgs.beta.port: 99999 is not a port"), "\(text)")
            #expect(text.contains("\(dir)/orgs.d/b.yaml: orgs.acme: org acme is already defined in the main file"), "\(text)")
            #expect(text.contains("\(dir)/orgs.d/b.yaml: line 4: listen: unknown key"), "\(text)")
        }
    }

    @Test func aNamedFileThatDoesNotExistIsAnError() {
        let issues = ConfigTestSupport.issues(ConfigTestSupport.minimal + "\ninclude: \"orgs/acme.yaml\"", baseDirectory: "/nonexistent")
        #expect(issues.first?.message == "orgs/acme.yaml: no such file", "\(issues)")
    }

    /// The indexed classifier gives the answer of the plain first-match scan, on random
    /// patterns (exact, *@domain and general globs mixed) and random senders.
    @Test func indexedClassificationEqualsTheFirstMatchScan() {
        var random = SplitMix64(seed: 0x5EED_0C1A_551F)
        let locals = ["a", "b", "ab", "*", "a*", "*b", "x"], domains = ["d.example", "e.example", "*.example", "D.EXAMPLE", "*"]
        for _ in 0..<200 {
            var orgs: [OrgSetting] = []
            for index in 0..<Int.random(in: 1...6, using: &random) {
                let senders = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                    locals.randomElement(using: &random)! + "@" + domains.randomElement(using: &random)!
                }
                orgs.append(OrgSetting(id: "org\(index)", route: .useDefault, senders: senders))
            }
            let classifier = OrgClassifier(orgHeader: "X-Org", orgs: orgs)
            for local in ["a", "b", "ab", "x", "zz"] {
                for domain in ["d.example", "E.example", "f.example", "other.test"] {
                    let address = local + "@" + domain
                    let expected = orgs.flatMap { org in org.senders.map { (org.id, $0) } }
                        .first { SenderPattern($0.1).matches(address) }
                    let got = classifier.classify(headerValue: nil, sender: address)
                    #expect(got.orgID == expected?.0, "\(address) with \(orgs.map(\.senders))")
                    if let expected { #expect(got.source == .senderPattern(expected.1)) }
                }
            }
        }
    }
}
