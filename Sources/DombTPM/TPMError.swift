//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2

/// A failure reported by the TPM or by the TSS stack, with the decoded return code.
///
/// Like tpm2-pytss's `TSS2_Exception`: the raw code is kept, the message comes from
/// `Tss2_RC_Decode`, and the command that failed is named.
public struct TPMError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The raw `TSS2_RC`, layer included; 0 for errors raised by domb itself.
    public var returnCode: UInt32
    /// The TPM command or TSS call that failed (`Esys_PCR_Extend`).
    public var operation: String
    /// The `Tss2_RC_Decode` text, or domb's own explanation.
    public var message: String

    public init(returnCode: UInt32, operation: String, message: String) {
        self.returnCode = returnCode
        self.operation = operation
        self.message = message
    }

    init(returnCode: UInt32, operation: String) {
        let text = Tss2_RC_Decode(returnCode).map { String(cString: $0) } ?? "unknown"
        self.init(returnCode: returnCode, operation: operation, message: text)
    }

    /// An error detected by domb before or after talking to the TPM.
    public static func usage(_ operation: String, _ message: String) -> TPMError {
        TPMError(returnCode: 0, operation: operation, message: message)
    }

    public var description: String {
        if returnCode == 0 { return "\(operation): \(message)" }
        return "\(operation) failed: 0x\(String(returnCode, radix: 16)) (\(message))"
    }

    /// The TPM's response code without the TSS layer bits.
    public var baseCode: UInt32 { returnCode & 0x0000_FFFF }
    /// The TSS layer the code came from (0 = the TPM itself, 7 = ESAPI, 10 = TCTI, …).
    public var layer: UInt32 { (returnCode >> 16) & 0xFF }

    /// Warning codes after which the command may simply be sent again
    /// (TPM 2.0 Part 2, §6.6.3: TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING).
    static let retryableCodes: Set<UInt32> = [0x922, 0x908, 0x90A]
    var isRetryable: Bool { layer == 0 || layer == 7 ? Self.retryableCodes.contains(baseCode) : false }
}
