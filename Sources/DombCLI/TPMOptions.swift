//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombTPM
import Foundation

/// `--tpm TCTI`, shared by every command that talks to a TPM.
public struct TPMOptions: ParsableArguments {
    @Option(
        name: .customLong("tpm"),
        help: ArgumentHelp(
            "TPM to use as a TCTI string: device:/dev/tpmrm0, swtpm:host=H,port=P, mssim:… (default: $TPM2TOOLS_TCTI, else device:/dev/tpmrm0).",
            valueName: "tcti"))
    public var tcti: String?

    public init() {}

    public func resolve() throws -> TCTIConfiguration {
        try TCTIConfiguration.resolve(tcti, environment: ProcessInfo.processInfo.environment)
    }

    public func open() throws -> TPM {
        try TPM(resolve())
    }
}

/// Parses "12,13,16-18" into PCR indices.
func parsePCRList(_ text: String) throws -> [Int] {
    var result: [Int] = []
    for part in text.split(separator: ",") {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last ?? "") else {
            throw ValidationError("bad PCR list \"\(text)\": expected e.g. 12,13 or 0-7")
        }
        guard low <= high, (0..<PCRValues.pcrCount).contains(low), (0..<PCRValues.pcrCount).contains(high) else {
            throw ValidationError("bad PCR range \"\(part)\": PCRs are 0 to \(PCRValues.pcrCount - 1)")
        }
        result.append(contentsOf: low...high)
    }
    guard !result.isEmpty else { throw ValidationError("empty PCR list") }
    return Array(Set(result)).sorted()
}

/// Parses "sha1,sha256" into algorithms.
func parseBankList(_ text: String) throws -> [HashAlgorithm] {
    try text.split(separator: ",").map { name in
        guard let algorithm = HashAlgorithm(name: String(name)), algorithm.digestSize != nil else {
            throw ValidationError("unknown hash algorithm \"\(name)\": use sha1, sha256, sha384, sha512 or sm3_256")
        }
        return algorithm
    }
}
