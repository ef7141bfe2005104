//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombLibxl
import DombTestSupport
import Foundation
import Testing

/// The xl.cfg corpus against what `xl -N create` printed for each file on Xen 4.17
/// (Corpus/xl-4.17/, captured by the e2e oracle, scripts/e2e/xlcfg/): every file domb
/// accepts gives the libxl_domain_config xl gives, field by field; every other file is
/// refused with a message naming the key its header says. The live run in dom0 repeats
/// this against xl itself.
@Suite struct XLOracleReplayTests {
    static let corpus = Repository.root + "/Tests/DombXLConfigTests/Corpus"
    static let captured = corpus + "/xl-4.17"
    /// CPU bitmaps in the capture have 8 bits: libxl sizes them to the host's CPUs,
    /// rounded up to a byte (xl-info.txt of that run: nr_cpus 2).
    static let capturedHostCPUs = 8

    static let files: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus)) ?? []
        return names.filter { $0.hasSuffix(".cfg") }.map { String($0.dropLast(4)) }.sorted()
    }()

    enum Expectation: Equatable {
        case accepts
        case refuses(key: String)
    }

    /// Line 2 of every corpus file: `# domb: accepts` or `# domb: refuses KEY`.
    static func expectation(_ text: String) -> Expectation? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 1 else { return nil }
        let line = lines[1]
        if line == "# domb: accepts" { return .accepts }
        let prefix = "# domb: refuses "
        guard line.hasPrefix(prefix) else { return nil }
        return .refuses(key: String(line.dropFirst(prefix.count)))
    }

    /// domb's libxl JSON for one corpus file (as `import-xl --libxl-json`), or its error.
    static func domb(_ name: String) -> Result<(json: String, uuidGiven: Bool), any Error> {
        Result {
            let (domain, _) = try LaunchFile.loadXLDomain("\(corpus)/\(name).cfg")
            return (try LibxlDomainConfig(describing: domain, hostCPUs: capturedHostCPUs).json(), domain.uuid != nil)
        }
    }

    @Test func theCorpusHasSixtyFilesOrMore() {
        #expect(Self.files.count >= 60, "\(Self.files.count) files")
    }

    @Test(arguments: files)
    func fileMatchesXLOrIsRefusedWithItsKey(name: String) throws {
        let text = try String(contentsOfFile: "\(Self.corpus)/\(name).cfg", encoding: .utf8)
        let expected = try #require(Self.expectation(text), "\(name).cfg: line 2 must say what domb does")
        let xlJSON = "\(Self.captured)/\(name).json"
        let xlAccepts = FileManager.default.fileExists(atPath: xlJSON)
        #expect(
            xlAccepts || FileManager.default.fileExists(atPath: "\(Self.captured)/\(name).refused"),
            "no capture of xl's answer for \(name).cfg")
        switch (expected, Self.domb(name)) {
        case (.accepts, .success(let domb)):
            try #require(xlAccepts, "domb accepts \(name).cfg, which xl 4.17 refuses")
            let xl = try JSONValue(parsing: try LaunchFile.readFile(xlJSON))
            let result = LibxlConfigComparison.compare(
                xl: xl, domb: try JSONValue(parsing: Array(domb.json.utf8)), uuidGiven: domb.uuidGiven)
            #expect(result.matches, "\(name): \(result.differences)")
        case (.accepts, .failure(let error)):
            Issue.record("\(name).cfg: refused, the corpus says domb accepts it: \(error)")
        case (.refuses(let key), .failure(let error)):
            #expect("\(error)".contains(key), "\(name).cfg: the message does not name \(key): \(error)")
        case (.refuses(let key), .success):
            Issue.record("\(name).cfg: accepted, the corpus says domb refuses it (\(key))")
        }
    }
}
