//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

// TSS fixed arrays (`TPML_*.digests[]`, `TPM2B_*.buffer`, `TPMU_HA`) import as tuples;
// every copy between them and Swift arrays goes through the helpers in this file.

extension TPML_PCR_SELECTION {
    /// Builds a selection of `pcrs` in each of `algorithms`.
    init(pcrs: [Int], algorithms: [HashAlgorithm]) {
        self.init()
        count = UInt32(min(algorithms.count, Int(TPM2_NUM_PCR_BANKS)))
        withUnsafeMutableBytes(of: &pcrSelections) { raw in
            let selections = raw.bindMemory(to: TPMS_PCR_SELECTION.self)
            for (index, algorithm) in algorithms.prefix(Int(TPM2_NUM_PCR_BANKS)).enumerated() {
                var selection = TPMS_PCR_SELECTION()
                selection.hash = algorithm.rawValue
                selection.sizeofSelect = 3
                withUnsafeMutableBytes(of: &selection.pcrSelect) { bits in
                    for pcr in pcrs where pcr >= 0 && pcr < PCRValues.pcrCount {
                        bits[pcr / 8] |= UInt8(1 << (pcr % 8))
                    }
                }
                selections[index] = selection
            }
        }
    }

    /// The selection as (algorithm, PCR indices) pairs, in order.
    var entries: [(HashAlgorithm, [Int])] {
        var result: [(HashAlgorithm, [Int])] = []
        var copy = pcrSelections
        withUnsafeBytes(of: &copy) { raw in
            let selections = raw.bindMemory(to: TPMS_PCR_SELECTION.self)
            for index in 0..<min(Int(count), selections.count) {
                var selection = selections[index]
                let size = min(Int(selection.sizeofSelect), MemoryLayout.size(ofValue: selection.pcrSelect))
                var pcrs: [Int] = []
                withUnsafeBytes(of: &selection.pcrSelect) { bits in
                    for byte in 0..<size {
                        for bit in 0..<8 where bits[byte] & UInt8(1 << bit) != 0 {
                            pcrs.append(byte * 8 + bit)
                        }
                    }
                }
                result.append((HashAlgorithm(rawValue: selection.hash), pcrs))
            }
        }
        return result
    }
}

extension TPML_DIGEST {
    /// The digests in order.
    var digestList: [[UInt8]] {
        var copy = digests
        return withUnsafeBytes(of: &copy) { raw in
            let items = raw.bindMemory(to: TPM2B_DIGEST.self)
            return (0..<min(Int(count), items.count)).map { items[$0].bytes }
        }
    }
}

extension TPM2B_DIGEST {
    var bytes: [UInt8] {
        var copy = buffer
        let length = min(Int(size), MemoryLayout.size(ofValue: copy))
        return withUnsafeBytes(of: &copy) { Array($0.prefix(length)) }
    }
}

extension TPML_DIGEST_VALUES {
    /// Builds the list from a digest set; the caller has checked sizes and count.
    init(_ set: DigestSet) {
        self.init()
        count = UInt32(set.count)
        withUnsafeMutableBytes(of: &digests) { raw in
            let items = raw.bindMemory(to: TPMT_HA.self)
            for (index, tagged) in set.digests.enumerated() where index < items.count {
                var ha = TPMT_HA()
                ha.hashAlg = tagged.algorithm.rawValue
                withUnsafeMutableBytes(of: &ha.digest) { dest in
                    dest.copyBytes(from: tagged.bytes.prefix(dest.count))
                }
                items[index] = ha
            }
        }
    }
}
