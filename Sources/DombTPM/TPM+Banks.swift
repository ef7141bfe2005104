//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

extension TPM {
    /// The active banks, after checking that every bank in `required` is among them.
    ///
    /// domb measures into every active bank (an active bank left unextended can be forged,
    /// DESIGN decision 3); a policy names the banks a verifier will rely on, and a TPM
    /// without them is refused before anything is extended.
    ///
    /// - Throws: ``TPMError`` naming the missing banks and the active ones.
    public func activeBanks(requiring required: [HashAlgorithm]) throws(TPMError) -> [HashAlgorithm] {
        let active = try activeBanks()
        let missing = required.filter { !active.contains($0) }
        guard missing.isEmpty else {
            throw .usage(
                "PCR banks",
                "the policy requires bank(s) \(missing.map(\.name).joined(separator: ", ")) but the TPM has only \(active.map(\.name).joined(separator: ", ")) active; allocate them with tpm2_pcrallocate and reboot"
            )
        }
        guard !active.isEmpty else { throw .usage("PCR banks", "the TPM has no active PCR bank") }
        return active
    }
}
