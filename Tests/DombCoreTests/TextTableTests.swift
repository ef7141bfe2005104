//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

@Suite struct TextTableTests {
    @Test func columnsAreAlignedLeftAndRightWithoutTrailingSpaces() {
        let table = TextTable([.init("PCR", .right), .init("NAME"), .init("NOTE")], rows: [["7", "SecureBoot", "x"], ["12", "db", ""], ["0"]])
        #expect(
            table.text == """
                PCR  NAME        NOTE
                  7  SecureBoot  x
                 12  db
                  0

                """)
    }

    @Test func escapesAreMeasuredAsPrintedAndWideCharactersTakeTwoColumns() {
        // The ESC is printed as the 2 columns `\e`; 日本 takes 4 columns; é + combining acute 1.
        let table = TextTable([.init("A"), .init("B", .right)], rows: [["x\u{1B}[2J", "1"], ["日本", "22"], ["e\u{301}", "3"]])
        let lines = table.text.split(separator: "\n").map(String.init)
        #expect(lines == ["A        B", #"x\e[2J   1"#, "日本    22", "e\u{301}        3"])
        #expect(!table.text.contains("\u{1B}"))
        for line in lines { #expect(TerminalText.columns(line) == 10, "\(line)") }
        #expect(TerminalText.columns("\u{202E}") == 0, "format characters take no column (and are escaped before)")
        #expect(TerminalText.columns(TerminalText.escape("\u{202E}")) == 8)
    }

    @Test func uefiVariableDataIsDecodedAndEveryLengthChecked() throws {
        func record(nameLength: UInt64, name: String, dataLength: UInt64, data: [UInt8]) -> [UInt8] {
            var writer = ByteWriter()
            writer.writeBytes([0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c])
            writer.writeLE(nameLength)
            writer.writeLE(dataLength)
            for unit in name.utf16 { writer.writeLE(unit) }
            writer.writeBytes(data)
            return writer.bytes
        }
        let good = try UEFIVariableData(parsing: record(nameLength: 10, name: "SecureBoot", dataLength: 1, data: [1]))
        #expect(good.name == "SecureBoot" && good.dataLength == 1 && good.isConsistent)
        #expect(good.vendorGUID == "8be4df61-93ca-11d2-aa0d-00e098032b8c")
        for (what, bytes) in [
            ("name longer than the record", record(nameLength: 11, name: "SecureBoot", dataLength: 1, data: [1])),
            ("name length overflowing", record(nameLength: .max, name: "PK", dataLength: 0, data: [])),
            ("name length overflowing when doubled", record(nameLength: 1 << 63, name: "PK", dataLength: 0, data: [])),
            ("truncated header", Array(record(nameLength: 2, name: "PK", dataLength: 0, data: []).prefix(20))),
            ("truncated GUID", Array(record(nameLength: 2, name: "PK", dataLength: 0, data: []).prefix(9))),
        ] {
            #expect(throws: ParseError.self, "\(what)") { try UEFIVariableData(parsing: bytes) }
            let event = UnverifiedEvent(pcr: 7, type: .efiVariableDriverConfig, digests: DigestSet(), data: bytes)
            #expect(EventSummary.describe(event) == "unreadable UEFI_VARIABLE_DATA, \(bytes.count) bytes", "\(what)")
        }
        // A data length that disagrees with the record keeps the name and says so.
        for (dataLength, data, follows) in [(UInt64(2), [UInt8(1)], "1 byte"), (.max, [1], "1 byte"), (0, [1, 2], "2 bytes")] {
            let bytes = record(nameLength: 2, name: "PK", dataLength: dataLength, data: data)
            let variable = try UEFIVariableData(parsing: bytes)
            #expect(!variable.isConsistent)
            let event = UnverifiedEvent(pcr: 7, type: .efiVariableAuthority, digests: DigestSet(), data: bytes)
            #expect(EventSummary.describe(event) == "PK, VariableDataLength \(dataLength) but \(follows) follow the name")
        }
        // A hostile name is returned raw; the table escapes it.
        let hostile = record(nameLength: 3, name: "a\u{1B}b", dataLength: 0, data: [])
        let event = UnverifiedEvent(pcr: 7, type: .efiVariableBoot, digests: DigestSet(), data: hostile)
        let log = EventLog(format: .sha1, specID: nil, events: [event])
        #expect(log.summaryTable.text.contains(#"a\eb, 0 bytes of data"#))
    }
}
