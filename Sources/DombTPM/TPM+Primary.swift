//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2

extension TPM {
    /// `TPM2_CreatePrimary` (TPM 2.0 Part 3 §24.1) of `template` under `hierarchy`
    /// (`ESYS_TR_RH_OWNER`, `ESYS_TR_RH_ENDORSEMENT`, authorised with its empty password),
    /// with an empty sensitive area, no outside info and no creation PCRs — so the same TPM
    /// and template always give the same key (the EK templates rely on that).
    ///
    /// - Returns: the transient object (the caller flushes it) and the public area the TPM
    ///   returned. The creation data, hash and ticket are freed.
    /// - Throws: ``TPMError`` when the TPM refuses, or returns no public area (the object
    ///   is flushed then).
    func createPrimary(hierarchy: ESYS_TR, template: TPM2B_PUBLIC, what: String) throws(TPMError) -> (
        object: ESYS_TR, publicArea: TPM2B_PUBLIC
    ) {
        var template = template
        var sensitive = TPM2B_SENSITIVE_CREATE()
        var outside = TPM2B_DATA()
        var creationPCR = TPML_PCR_SELECTION()
        var object: ESYS_TR = UInt32(ESYS_TR_NONE)
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        try command("Esys_CreatePrimary(\(what))") { esys in
            Esys_CreatePrimary(
                esys, hierarchy, UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                &sensitive, &template, &outside, &creationPCR, &object, &outPublic, &creationData, &creationHash, &ticket)
        }
        defer {
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        guard let outPublic else {
            flush(object)
            throw .usage("Esys_CreatePrimary", "the TPM returned no public area for the \(what)")
        }
        return (object, outPublic.pointee)
    }
}
