//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// The human tables (issue 19) on real outputs: columns line up, and what `log show` says
/// about firmware records agrees with tpm2_eventlog.
@Suite struct TableCLITests {
    static let eventlogs = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs"

    /// A parsed table: its header line and rows, cut at the header's column positions.
    struct ParsedTable {
        var header: String
        var rows: [[String]]
    }

    /// Finds the table whose header line starts with `first` header text (after padding) and
    /// checks that every row lines up with it: a left-aligned column's cells start where its
    /// header starts, a right-aligned column's cells end where its header ends, with a
    /// space before (left) or after (right). Returns the cells.
    static func alignedTable(
        in output: String, headers: [String], rightAligned: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ParsedTable {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0) }
        let headerIndex = try #require(
            lines.firstIndex { line in
                let words = String(line).split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                return words.first == headers.first?.split(separator: " ").first.map(String.init) && String(line).contains(headers.last ?? "")
            }, "no table header \(headers) in\n\(output)", sourceLocation: sourceLocation)
        let header = lines[headerIndex]
        let headerText = String(header)
        // Column spans in the header, in characters (the tables tested here are ASCII).
        var spans: [(start: Int, end: Int)] = []
        var searchFrom = headerText.startIndex
        for name in headers {
            let range = try #require(headerText.range(of: name, range: searchFrom..<headerText.endIndex), "\(name) in \(headerText)")
            spans.append((headerText.distance(from: headerText.startIndex, to: range.lowerBound), headerText.distance(from: headerText.startIndex, to: range.upperBound)))
            searchFrom = range.upperBound
        }
        var rows: [[String]] = []
        for line in lines[(headerIndex + 1)...] {
            if line.isEmpty { break }
            // Where each cell starts: a left-aligned one at its header; a right-aligned one
            // (numbers, no spaces) at the start of the run of non-spaces ending at its header's end.
            var starts: [Int] = []
            for (index, name) in headers.enumerated() {
                let (start, end) = spans[index]
                if rightAligned.contains(name) {
                    let aligned = end <= line.count && line[end - 1] != " " && (end == line.count || line[end] == " ")
                    #expect(aligned, "\(name) not right-aligned: \(String(line))", sourceLocation: sourceLocation)
                    var cellStart = min(end, line.count)
                    while cellStart > 0 && line[cellStart - 1] != " " { cellStart -= 1 }
                    starts.append(cellStart)
                } else {
                    let aligned = start >= line.count || (line[start] != " " && (start == 0 || line[start - 1] == " "))
                    #expect(aligned, "\(name) not left-aligned: \(String(line))", sourceLocation: sourceLocation)
                    starts.append(min(start, line.count))
                }
            }
            let ends = starts.indices.map { $0 + 1 < starts.count ? max(starts[$0 + 1], starts[$0]) : line.count }
            rows.append(starts.indices.map { String(line[starts[$0]..<ends[$0]]).trimmingCharacters(in: .whitespaces) })
        }
        return ParsedTable(header: headerText, rows: rows)
    }

    /// One record as tpm2_eventlog prints it.
    struct ToolsEvent {
        var type = ""
        var unicodeName: String?
    }

    /// Records in order, numbered from 0 as tpm2_eventlog does: crypto-agile logs print
    /// `- EventNum: N` (the Spec ID header is 0); SHA-1 logs print none, so each
    /// `PCRIndex:` line starts the next record.
    static func tpm2Eventlog(_ text: String) -> [Int: ToolsEvent] {
        var events: [Int: ToolsEvent] = [:]
        var current = -1
        var numbered: Int?
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("- EventNum: ") {
                numbered = Int(trimmed.dropFirst("- EventNum: ".count))
            } else if line.hasPrefix("  PCRIndex: ") {
                current += 1
                if let numbered, numbered != current { Issue.record("tpm2_eventlog EventNum \(numbered) at record \(current)") }
                numbered = nil
                events[current] = ToolsEvent()
            } else if current >= 0, line.hasPrefix("  EventType: ") {
                events[current]?.type = String(trimmed.dropFirst("EventType: ".count))
            } else if current >= 0, trimmed.hasPrefix("UnicodeName: ") {
                events[current]?.unicodeName = String(trimmed.dropFirst("UnicodeName: ".count))
            }
        }
        return events
    }

    /// tpm2_eventlog (tpm2-tools) as the oracle of `log show`'s table over the real-world
    /// corpus and tpm2-tools' own logs: every record it prints is a row with the same number
    /// and event type, and every UEFI variable it names is the name the row shows. The two
    /// logs it cannot read (a Spec ID event with a short eventDataSize; a Windows log on which
    /// tpm2-tools 5.4 segfaults) are named, so a third cannot pass unnoticed.
    @Test func logShowAgreesWithTpm2EventlogOnTypesAndUEFIVariableNames() throws {
        let folders = ["real-world", "tpm2-tools"]
        var logs: [String] = []
        for folder in folders {
            let names = try FileManager.default.contentsOfDirectory(atPath: "\(Self.eventlogs)/\(folder)").filter { $0.hasSuffix(".bin") }
            logs += names.sorted().map { "\(Self.eventlogs)/\(folder)/\($0)" }
        }
        #expect(logs.count >= 35, "corpus: \(logs.count) logs")
        var unreadable: [String] = []
        var unknownToTools: Set<String> = []
        var comparedLogs = 0, comparedRecords = 0, comparedVariables = 0, logsWithVariables = 0
        for log in logs {
            let name = URL(fileURLWithPath: log).deletingPathExtension().lastPathComponent
            let shown = try DombBinary.run(["log", "show", log])
            #expect(shown.status == 0, "\(name): \(shown.stderrText)")
            let digestHeader = shown.stdoutText.contains("SHA256 (prefix)") ? "SHA256 (prefix)" : "SHA1 (prefix)"
            let table = try Self.alignedTable(
                in: shown.stdoutText, headers: ["#", "PCR", "TYPE", digestHeader, "WHAT"], rightAligned: ["#", "PCR"])
            let rows = Dictionary(table.rows.map { (Int($0[0]) ?? -1, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(rows.count == table.rows.count, "\(name): row numbers repeat")
            let tools = try Tools.run("tpm2_eventlog", [log], check: false)
            guard tools.status == 0 else {
                unreadable.append(name)
                continue
            }
            comparedLogs += 1
            var variablesHere = 0
            let toolsEvents = Self.tpm2Eventlog(tools.stdoutText)
            let header = toolsEvents[0]?.type == "EV_NO_ACTION" && rows[0] == nil ? 1 : 0
            #expect(table.rows.count == toolsEvents.count - header, "\(name): \(table.rows.count) rows, tpm2_eventlog \(toolsEvents.count) records")
            for (number, event) in toolsEvents {
                // tpm2_eventlog prints the Spec ID header as event 0; domb prints it above the table.
                if number == 0 && event.type == "EV_NO_ACTION" && rows[0] == nil { continue }
                guard let row = rows[number] else {
                    Issue.record("\(name): tpm2_eventlog event \(number) \(event.type) is not a row")
                    continue
                }
                comparedRecords += 1
                if event.type == "Unknown event type" {
                    // tpm2-tools 5.4 predates some PFP types; domb must name one then.
                    unknownToTools.insert(row[2])
                    continue
                }
                #expect(row[2] == event.type, "\(name) #\(number): domb \(row[2]), tpm2_eventlog \(event.type)")
                if let unicodeName = event.unicodeName {
                    comparedVariables += 1
                    variablesHere += 1
                    #expect(row[4].hasPrefix("\(unicodeName), "), "\(name) #\(number): domb \(row[4]), tpm2_eventlog \(unicodeName)")
                }
            }
            if variablesHere > 0 { logsWithVariables += 1 }
            // Every EV_EFI_VARIABLE_* row domb shows was named by tpm2_eventlog too.
            let variableRows = table.rows.filter { $0[2].hasPrefix("EV_EFI_VARIABLE_") }.count
            #expect(variableRows == variablesHere, "\(name): \(variableRows) variable rows, tpm2_eventlog named \(variablesHere)")
        }
        #expect(unreadable == ["go-attestation-short_no_action", "go-attestation-windows-option-rom"], "tpm2_eventlog failed on \(unreadable)")
        #expect(comparedLogs == logs.count - 2)
        #expect(unknownToTools == ["EV_EFI_HCRTM_EVENT"], "types tpm2-tools 5.4 does not name: \(unknownToTools)")
        #expect(comparedVariables >= 200 && logsWithVariables >= 20, "\(comparedVariables) variables in \(logsWithVariables) logs")
        print("log show vs tpm2_eventlog: \(comparedLogs) logs, \(comparedRecords) records, \(comparedVariables) UEFI variables in \(logsWithVariables) logs agree")
    }

    /// The Windows log tpm2_eventlog cannot read: its PCR −1 records are rows with PCR -1,
    /// and its variables are named (checked against go-attestation's expectations of the
    /// same log: SecureBoot, PK, KEK, db, dbx first on PCR 7).
    @Test func windowsLogRowsShowPCRMinusOneAndVariableNames() throws {
        let shown = try DombBinary.run(["log", "show", Self.eventlogs + "/real-world/go-attestation-windows-option-rom.bin"])
        #expect(shown.status == 0, "\(shown.stderrText)")
        let table = try Self.alignedTable(in: shown.stdoutText, headers: ["#", "PCR", "TYPE", "SHA1 (prefix)", "WHAT"], rightAligned: ["#", "PCR"])
        let minusOne = table.rows.filter { $0[1] == "-1" }
        #expect(minusOne.map { $0[0] } == ["60"] && minusOne.first?[2] == "EV_NO_ACTION")
        let pcr7Names = table.rows.filter { $0[1] == "7" && $0[2] == "EV_EFI_VARIABLE_DRIVER_CONFIG" }.map { $0[4].split(separator: ",").first.map(String.init) ?? "" }
        #expect(pcr7Names == ["SecureBoot", "PK", "KEK", "db", "dbx"], "\(pcr7Names)")
        let verbose = try DombBinary.run(["log", "show", "--verbose", Self.eventlogs + "/real-world/go-attestation-windows-option-rom.bin"])
        #expect(verbose.stdoutText.contains("#60 PCR 0xFFFFFFFF (never extended) EV_NO_ACTION"))
        #expect(verbose.stdoutText.contains("SecureBoot (vendor 8be4df61-93ca-11d2-aa0d-00e098032b8c), 1 byte of data"))
    }

    /// `predict` and `bundle show` on a real four-bank bundle: the PCR table lines up, holds
    /// every value in full, and equals what tpm2_eventlog replays from the bundle's predicted
    /// log; `--pcrread` is tpm2_pcrread's layout with the same values; the module table
    /// lines up and its digests are what `sha256sum` says of the extracted members.
    @Test func predictAndBundleShowTablesAgreeWithTpm2EventlogAndSha256sum() throws {
        let work = try TemporaryDirectory(prefix: "domb-tables")
        let (bundle, key) = try BootCLITests.demoBundle(in: work)
        let predict = try DombBinary.run(["predict", bundle, "--pubkey", key])
        #expect(predict.status == 0, "\(predict.stderrText)")
        let table = try Self.alignedTable(in: predict.stdoutText, headers: ["PCR", "BANK", "VALUE"], rightAligned: ["PCR"])
        var shown = PCRValues()
        for row in table.rows {
            let bank = try #require(HashAlgorithm(name: row[1]), "\(row)")
            let value = try #require([UInt8](hex: row[2]), "\(row)")
            #expect(value.count == bank.digestSize, "\(row): not a full digest")
            shown[bank, try #require(Int(row[0]))] = value
        }
        #expect(shown.algorithms == [.sha1, .sha256, .sha384, .sha512] && shown.pcrs(in: .sha512) == [12, 13])
        // The rows of one PCR sit together.
        #expect(table.rows.map { $0[0] } == ["12", "12", "12", "12", "13", "13", "13", "13"])

        let extract = try DombBinary.run(["bundle", "extract", bundle, "--pubkey", key, "-o", work.file("x"), "--no-progress"])
        #expect(extract.status == 0, "\(extract.stderrText)")
        let tools = try Tools.run("tpm2_eventlog", [work.file("x/eventlog.predicted")])
        let section = try #require(tools.stdoutText.range(of: "\npcrs:"))
        let replayed = try PCRValues(parsingText: String(tools.stdoutText[section.upperBound...]))
        for bank in shown.algorithms {
            for pcr in [12, 13] { #expect(shown[bank, pcr] == replayed[bank, pcr], "\(bank) PCR \(pcr): table differs from tpm2_eventlog") }
        }
        let pcrread = try DombBinary.run(["predict", bundle, "--pubkey", key, "--pcrread"])
        #expect(pcrread.stdoutText.hasPrefix("sha1:\n  12: 0x"), "\(pcrread.stdoutText)")
        #expect(try PCRValues(parsingText: pcrread.stdoutText) == shown)
        #expect(try DombBinary.run(["predict", bundle, "--json", "--pcrread"]).status == 64, "--json and --pcrread exclude each other")

        let show = try DombBinary.run(["bundle", "show", bundle])
        #expect(show.status == 0, "\(show.stderrText)")
        let modules = try Self.alignedTable(in: show.stdoutText, headers: ["DOMAIN", "ROLE", "MEMBER", "SIZE", "SHA256"], rightAligned: ["SIZE"])
        #expect(modules.rows.count == 7, "\(show.stdoutText)")
        for row in modules.rows {
            let sum = try Tools.run("sha256sum", [work.file("x/\(row[2])")]).stdoutText.prefix(64)
            #expect(row[4] == String(sum), "\(row[2])")
            let size = try FileManager.default.attributesOfItem(atPath: work.file("x/\(row[2])"))[.size] as? Int
            #expect(Int(row[3]) == size, "\(row[2])")
        }
        let members = try Self.alignedTable(in: show.stdoutText, headers: ["MEMBER", "SIZE", "SHA256"], rightAligned: ["SIZE"])
        #expect(Set(members.rows.map { $0[0] }) == ["launch.dtb", "xenstore-plan.json", "eventlog.predicted"])
        let predicted = try Self.alignedTable(
            in: String(show.stdoutText[try #require(show.stdoutText.range(of: "predicted PCR values:")).upperBound...]),
            headers: ["PCR", "BANK", "VALUE"], rightAligned: ["PCR"])
        #expect(predicted.rows == table.rows, "bundle show and predict print the same PCR table")
    }

    /// `tpm info` against swtpm: the bank table lines up and names the banks tpm2_getcap
    /// reports with PCRs allocated.
    @Test func tpmInfoBanksAreTpm2GetcapsAllocatedBanks() throws {
        try Swtpm.with { swtpm in
            let info = try DombBinary.run(["tpm", "info", "--tpm", swtpm.tcti])
            #expect(info.status == 0, "\(info.stderrText)")
            let table = try Self.alignedTable(in: info.stdoutText, headers: ["BANK", "TPM_ALG_ID", "DIGEST BYTES"], rightAligned: ["TPM_ALG_ID", "DIGEST BYTES"])
            let getcap = try Tools.run("tpm2_getcap", ["-T", swtpm.tcti, "pcrs"], environment: ["TSS2_LOG": "all+none"]).stdoutText
            let allocated = getcap.split(separator: "\n").compactMap { line -> String? in
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix("- "), let colon = trimmed.firstIndex(of: ":") else { return nil }
                let list = trimmed[trimmed.index(after: colon)...].filter { !" []".contains($0) }
                return list.isEmpty ? nil : String(trimmed.dropFirst(2)[..<colon])
            }
            #expect(!allocated.isEmpty, "\(getcap)")
            #expect(table.rows.map { $0[0] } == allocated, "\(info.stdoutText)\n\(getcap)")
            for row in table.rows {
                let bank = try #require(HashAlgorithm(name: row[0]))
                #expect(row[2] == "\(bank.digestSize ?? 0)" && UInt16(row[1].dropFirst(2), radix: 16) == bank.rawValue, "\(row)")
            }
        }
    }
}
