//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// A connection to a TPM 2.0 through tpm2-tss ESAPI.
///
/// One object owns one ESAPI context and its TCTI; both are finalised in `deinit`.
/// Every TPM command goes through one place, which retries `TPM_RC_RETRY`, `TPM_RC_YIELDED`
/// and `TPM_RC_TESTING` a bounded number of times, decodes every other failure, and counts
/// the commands sent (``commandCount``), so that benchmarks and tests can prove how many
/// round trips a flow costs.
public final class TPM: @unchecked Sendable {
    /// Attempts per command before a retryable warning becomes an error.
    public static let maximumAttempts = 20

    public let configuration: TCTIConfiguration
    /// TPM commands sent through this connection, retries included.
    public private(set) var commandCount = 0

    private var esys: OpaquePointer?
    private var tcti: OpaquePointer?

    /// Opens the TPM named by `configuration`.
    ///
    /// tss2 logs its own errors to stderr unless `TSS2_LOG` says otherwise; domb reports
    /// errors itself, so it silences that logging unless the caller set `TSS2_LOG`.
    /// The corresponding C functions are `Tss2_TctiLdr_Initialize` and `Esys_Initialize`.
    public init(_ configuration: TCTIConfiguration) throws(TPMError) {
        self.configuration = configuration
        setenv("TSS2_LOG", "all+none", 0)
        var tctiContext: OpaquePointer?
        let tctiRC = Tss2_TctiLdr_Initialize(configuration.description, &tctiContext)
        guard tctiRC == 0, let tctiContext else {
            var error = TPMError(returnCode: tctiRC, operation: "opening TPM \"\(configuration)\"")
            error.message += Self.hint(for: configuration)
            throw error
        }
        self.tcti = tctiContext
        var context: OpaquePointer?
        let rc = Esys_Initialize(&context, tctiContext, nil)
        guard rc == 0, let context else {
            var local: OpaquePointer? = tctiContext
            Tss2_TctiLdr_Finalize(&local)
            self.tcti = nil
            throw TPMError(returnCode: rc, operation: "Esys_Initialize on \"\(configuration)\"")
        }
        self.esys = context
    }

    deinit { close() }

    /// Closes the connection now. A TPM simulator serves one client at a time, so a flow
    /// that hands the TPM to another tool closes its own connection first.
    public func close() {
        if esys != nil { Esys_Finalize(&esys) }
        if tcti != nil { Tss2_TctiLdr_Finalize(&tcti) }
    }

    private static func hint(for configuration: TCTIConfiguration) -> String {
        switch configuration.name {
        case "device": "; is \(configuration.configuration) present and readable (tpm_tis / tpm_crb loaded)?"
        case "swtpm", "mssim": "; is the simulator listening there?"
        default: ""
        }
    }

    /// Runs one ESAPI call, retrying on the TPM's "try again" warnings.
    func command(_ operation: String, _ body: (OpaquePointer) -> UInt32) throws(TPMError) {
        guard let esys else { throw .usage(operation, "TPM connection is closed") }
        var attempt = 0
        while true {
            attempt += 1
            commandCount += 1
            let rc = body(esys)
            if rc == 0 { return }
            let error = TPMError(returnCode: rc, operation: operation)
            guard error.isRetryable, attempt < Self.maximumAttempts else { throw error }
            usleep(UInt32(min(attempt, 10)) * 1_000)
        }
    }

    /// Runs an ESAPI call that never reaches the TPM (`Esys_TR_GetName`, `Esys_TR_SetAuth`,
    /// `Esys_TRSess_SetAttributes`): not counted in ``commandCount``, never retried.
    func localCall(_ operation: String, _ body: (OpaquePointer) -> UInt32) throws(TPMError) {
        guard let esys else { throw .usage(operation, "TPM connection is closed") }
        let rc = body(esys)
        guard rc == 0 else { throw TPMError(returnCode: rc, operation: operation) }
    }

    /// The PCR banks the TPM has allocated with at least one PCR selected: the banks every
    /// measurement must extend (an active bank left unextended can be forged).
    ///
    /// The corresponding C function is `Esys_GetCapability(TPM2_CAP_PCRS)`.
    public func activeBanks() throws(TPMError) -> [HashAlgorithm] {
        var more: UInt8 = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        try command("Esys_GetCapability(TPM2_CAP_PCRS)") { esys in
            Esys_GetCapability(
                esys, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                UInt32(TPM2_CAP_PCRS), 0, 1, &more, &data)
        }
        defer { Esys_Free(data) }
        guard let data else { throw .usage("Esys_GetCapability", "TPM returned no capability data") }
        return data.pointee.data.assignedPCR.entries
            .filter { !$0.1.isEmpty }
            .map(\.0)
            .sorted()
    }

    /// Extends `pcr` with one digest per bank in a single `TPM2_PCR_Extend`.
    ///
    /// The corresponding C function is `Esys_PCR_Extend`.
    public func extend(pcr: Int, digests: DigestSet) throws(TPMError) {
        guard (0..<PCRValues.pcrCount).contains(pcr) else {
            throw .usage("PCR_Extend", "PCR \(pcr) is outside 0...\(PCRValues.pcrCount - 1)")
        }
        guard !digests.isEmpty, digests.count <= Int(TPM2_NUM_PCR_BANKS) else {
            throw .usage("PCR_Extend", "PCR \(pcr): need 1 to \(TPM2_NUM_PCR_BANKS) digests, got \(digests.count)")
        }
        for digest in digests.digests {
            guard let size = digest.algorithm.digestSize, size == digest.bytes.count else {
                throw .usage(
                    "PCR_Extend",
                    "PCR \(pcr): \(digest.algorithm) digest has \(digest.bytes.count) bytes, expected \(digest.algorithm.digestSize.map(String.init) ?? "a known algorithm")"
                )
            }
        }
        var list = TPML_DIGEST_VALUES(digests)
        try command("Esys_PCR_Extend(PCR \(pcr))") { esys in
            Esys_PCR_Extend(
                esys, UInt32(ESYS_TR_PCR0) + UInt32(pcr), UInt32(ESYS_TR_PASSWORD),
                UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &list)
        }
    }

    /// Reads `pcrs` in each of `banks`. A TPM returns at most eight digests per
    /// `TPM2_PCR_Read`, so this repeats the command until everything asked for has come back.
    ///
    /// The corresponding C function is `Esys_PCR_Read`.
    public func readPCRs(_ pcrs: [Int], banks: [HashAlgorithm]) throws(TPMError) -> PCRValues {
        var result = PCRValues()
        var pending: [(HashAlgorithm, Set<Int>)] = banks.map { ($0, Set(pcrs)) }
        for pcr in pcrs where !(0..<PCRValues.pcrCount).contains(pcr) {
            throw .usage("PCR_Read", "PCR \(pcr) is outside 0...\(PCRValues.pcrCount - 1)")
        }
        while let index = pending.firstIndex(where: { !$0.1.isEmpty }) {
            let (algorithm, wanted) = pending[index]
            var selection = TPML_PCR_SELECTION(pcrs: wanted.sorted(), algorithms: [algorithm])
            var updateCounter: UInt32 = 0
            var selectionOut: UnsafeMutablePointer<TPML_PCR_SELECTION>?
            var values: UnsafeMutablePointer<TPML_DIGEST>?
            try command("Esys_PCR_Read(\(algorithm))") { esys in
                Esys_PCR_Read(
                    esys, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                    &selection, &updateCounter, &selectionOut, &values)
            }
            defer {
                Esys_Free(selectionOut)
                Esys_Free(values)
            }
            guard let selectionOut, let values else {
                throw .usage("Esys_PCR_Read", "TPM returned no PCR values")
            }
            let returned = selectionOut.pointee.entries.flatMap { entry in entry.1.map { (entry.0, $0) } }
            let digests = values.pointee.digestList
            guard !returned.isEmpty, returned.count == digests.count else {
                throw .usage(
                    "Esys_PCR_Read",
                    "\(algorithm) bank: TPM returned \(digests.count) digests for \(returned.count) selected PCRs; is the bank allocated?"
                )
            }
            for ((bank, pcr), digest) in zip(returned, digests) {
                result[bank, pcr] = digest
                if let slot = pending.firstIndex(where: { $0.0 == bank }) { pending[slot].1.remove(pcr) }
            }
        }
        return result
    }
}
