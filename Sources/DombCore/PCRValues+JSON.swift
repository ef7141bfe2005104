//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension PCRValues {
    /// The document `domb predict --json` prints: ``JSONFormat/pcrPrediction``'s `format`
    /// and `formatVersion`, and ``goldenJSON`` under `pcrs` (the key `boot --json` gives
    /// the same map).
    public var predictionJSON: JSONValue {
        JSONFormat.pcrPrediction.document(["pcrs": goldenJSON])
    }

    /// Golden PCR values as JSON, `{"sha256": {"12": "<hex>", "13": "<hex>"}}`: what
    /// `domb attest verify --expected-pcrs` reads, on its own or as the `pcrs` of
    /// ``predictionJSON``.
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

    /// Reads ``predictionJSON``'s form (`domb predict --json`'s output), or ``goldenJSON``'s
    /// alone (written by hand); whitespace allowed.
    /// - Throws: ``ParseError`` naming the bank or PCR at fault, or the format or version.
    public init(goldenJSON bytes: [UInt8]) throws(ParseError) {
        let value = try JSONValue(parsing: bytes)
        guard var banks = value.objectValue else {
            throw .invalid("expected PCRs: not JSON of the form {\"sha256\": {\"12\": \"<hex>\"}}")
        }
        if banks[JSONFormat.Key.format.rawValue] != nil || banks[JSONFormat.Key.formatVersion.rawValue] != nil {
            do throws(ParseError) {
                try JSONFormat.pcrPrediction.check(banks, optional: false)
            } catch {
                throw ParseError(error.code, "expected PCRs: \(error.reason)")
            }
            let keys = Set(banks.keys).subtracting(JSONFormat.Key.allCases.map(\.rawValue))
            guard keys == ["pcrs"], let pcrs = banks["pcrs"]?.objectValue else {
                throw .invalid("expected PCRs: a \(JSONFormat.pcrPrediction.name) document holds \"pcrs\" and nothing else")
            }
            banks = pcrs
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
