//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension PCRValues {
    /// Most lines accepted in a PCR values file (24 PCRs × a handful of banks, with room).
    public static let maximumTextLines = 4096

    /// Parses PCR values as `tpm2_pcrread`, `domb tpm pcrread` and `domb log replay` print
    /// them, and as the `pcrs:` section of `tpm2_eventlog` output:
    /// ```
    /// sha256:
    ///   12: 0x3D45…
    ///   13 : 0x…
    /// ```
    /// A leading `pcrs:` line, `---` and `#` comments are ignored.
    ///
    /// - Throws: ``ParseError`` naming the line.
    public init(parsingText text: String) throws(ParseError) {
        self.init()
        var bank: HashAlgorithm?
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard lineNumber <= Self.maximumTextLines else {
                throw .limit("PCR values text has more than \(Self.maximumTextLines) lines")
            }
            let line = rawLine.trimmingSpaces
            if line.isEmpty || line == "---" || line.hasPrefix("#") || line == "pcrs:" { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw .invalid("line \(lineNumber): expected \"bank:\" or \"PCR: 0xHEX\", got \"\(line)\"")
            }
            let left = line[..<colon].trimmingSpaces
            let right = line[line.index(after: colon)...].trimmingSpaces
            if right.isEmpty {
                guard let algorithm = HashAlgorithm(name: String(left)), algorithm.digestSize != nil else {
                    throw .invalid("line \(lineNumber): unknown bank \"\(left)\"")
                }
                bank = algorithm
                continue
            }
            guard let bank else { throw .invalid("line \(lineNumber): PCR value before any \"bank:\" line") }
            guard let pcr = Int(left), (0..<Self.pcrCount).contains(pcr) else {
                throw .invalid("line \(lineNumber): \"\(left)\" is not a PCR index 0 to 23")
            }
            guard let value = [UInt8](hex: right), value.count == bank.digestSize else {
                throw .invalid("line \(lineNumber): PCR \(pcr) \(bank) value is not \(bank.digestSize ?? 0) bytes of hex")
            }
            guard self[bank, pcr] == nil else { throw .invalid("line \(lineNumber): PCR \(pcr) \(bank) given twice") }
            self[bank, pcr] = value
        }
    }

    /// The text form ``init(parsingText:)`` reads, banks and PCRs ascending, upper-case hex
    /// as tpm2_pcrread prints it.
    public var text: String {
        var out = ""
        for bank in algorithms {
            out += "\(bank.name):\n"
            for pcr in pcrs(in: bank) {
                out += "  \(pcr < 10 ? " " : "")\(pcr): 0x\((self[bank, pcr] ?? []).hexString.uppercased())\n"
            }
        }
        return out
    }
}

extension PCRValues {
    /// The values as a table for a person: one row per PCR and bank, PCRs ascending and
    /// within a PCR the banks in TPM_ALG_ID order, each value in full (lower-case hex, as
    /// `openssl dgst` prints a digest), so the banks of one PCR sit together:
    /// ```
    /// PCR  BANK    VALUE
    ///  12  sha1    …
    ///  12  sha256  …
    /// ```
    /// ``text`` is the tpm2_pcrread layout, for diffing with that tool and for `--pcrs`.
    public var table: TextTable {
        var table = TextTable([.init("PCR", .right), .init("BANK"), .init("VALUE")])
        let allPCRs = Set(algorithms.flatMap { self.pcrs(in: $0) }).sorted()
        for pcr in allPCRs {
            for bank in algorithms {
                guard let value = self[bank, pcr] else { continue }
                table.append(["\(pcr)", bank.name, value.hexString])
            }
        }
        return table
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" || first == "\r" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice.removeLast() }
        return slice
    }
}
