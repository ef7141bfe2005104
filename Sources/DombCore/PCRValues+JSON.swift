//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension PCRValues {
    /// Golden PCR values as JSON, `{"sha256": {"12": "<hex>", "13": "<hex>"}}`: what
    /// `domb predict --json` prints and `domb attest verify --expected-pcrs` reads.
    public var goldenJSON: JSONValue {
        .object(goldenDictionary.mapValues { .object($0.mapValues { .string($0) }) })
    }

    /// ``goldenJSON`` as dictionaries, for `Encodable` reports.
    public var goldenDictionary: [String: [String: String]] {
        var banks: [String: [String: String]] = [:]
        for bank in algorithms {
            var values: [String: String] = [:]
            for pcr in pcrs(in: bank) { values[String(pcr)] = (self[bank, pcr] ?? []).hexString }
            banks[bank.name] = values
        }
        return banks
    }

    /// Reads ``goldenJSON``'s form (whitespace allowed).
    /// - Throws: ``ParseError`` naming the bank or PCR at fault.
    public init(goldenJSON bytes: [UInt8]) throws(ParseError) {
        let value = try JSONValue(parsing: bytes)
        guard let banks = value.objectValue else {
            throw .invalid("expected PCRs: not JSON of the form {\"sha256\": {\"12\": \"<hex>\"}}")
        }
        self.init()
        for (bankName, entries) in banks.sorted(by: { $0.key < $1.key }) {
            guard let bank = HashAlgorithm(name: bankName), let size = bank.digestSize else {
                throw .invalid("expected PCRs: unknown bank \"\(bankName)\"")
            }
            guard let entries = entries.objectValue else {
                throw .invalid("expected PCRs: \(bankName) is not an object of PCR index to hex digest")
            }
            for (pcrText, hex) in entries {
                guard let pcr = Int(pcrText), (0..<Self.pcrCount).contains(pcr) else {
                    throw .invalid("expected PCRs: \"\(pcrText)\" is not a PCR index 0–\(Self.pcrCount - 1)")
                }
                guard let text = hex.stringValue, let digest = [UInt8](hex: text), digest.count == size else {
                    throw .invalid("expected PCRs: \(bankName):\(pcr) is not a \(size)-byte digest in hex")
                }
                self[bank, pcr] = digest
            }
        }
        guard !algorithms.isEmpty else { throw .invalid("expected PCRs: the file lists no PCR") }
    }
}
