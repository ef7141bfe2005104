//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The TPM a command talks to, as `domb tpm info --json` prints it.
public struct TPMInfoReport: Encodable, Sendable {
    /// The TCTI configuration (`swtpm:host=…,port=…`, `device:/dev/tpmrm0`).
    public var tcti: String
    /// The active PCR banks, by name: every bank domb extends.
    public var activeBanks: [String]

    public init(tcti: String, activeBanks: [String]) {
        self.tcti = tcti
        self.activeBanks = activeBanks
    }
}
