//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// What a verifier remembers between quotes, per attestation key, so that an old quote
/// cannot be replayed (the `--state` file, JSON). Keylime's rule: `resetCount` and
/// `restartCount` never go back, `clock` always moves forward, `safe` must be YES.
public struct AttestationState: Codable, Hashable, Sendable {
    public static let formatName = "domb-attest-state/1"

    public struct Record: Codable, Hashable, Sendable {
        public var clock: UInt64
        public var resetCount: UInt32
        public var restartCount: UInt32
        public var firmwareVersion: UInt64

        public init(clock: UInt64, resetCount: UInt32, restartCount: UInt32, firmwareVersion: UInt64) {
            self.clock = clock
            self.resetCount = resetCount
            self.restartCount = restartCount
            self.firmwareVersion = firmwareVersion
        }

        public init(_ attest: TPMSAttest) {
            self.init(
                clock: attest.clockInfo.clock, resetCount: attest.clockInfo.resetCount,
                restartCount: attest.clockInfo.restartCount, firmwareVersion: attest.firmwareVersion)
        }
    }

    public var format: String
    /// Keyed by the signer's qualified name in hex (`TPMS_ATTEST.qualifiedSigner`).
    public var signers: [String: Record]

    public init(signers: [String: Record] = [:]) {
        self.format = Self.formatName
        self.signers = signers
    }

    public init(json: [UInt8]) throws(ParseError) {
        self = try JSONInput.decode(AttestationState.self, from: json, what: "not a domb attestation state file (JSON)")
        guard format == Self.formatName else {
            throw ParseError(.unsupported, "state file format \"\(format)\", expected \"\(Self.formatName)\"")
        }
    }

    public func jsonBytes() throws -> [UInt8] { try JSONOutput.fileBytes(self) }

    public func record(for attest: TPMSAttest) -> Record? { signers[attest.qualifiedSigner.hexString] }

    public mutating func update(with attest: TPMSAttest) {
        signers[attest.qualifiedSigner.hexString] = Record(attest)
    }

    /// The clock checks of a quote against the last verified one from the same signer.
    public static func check(_ clock: ClockInfo, against previous: Record?, requireSafe: Bool) -> [AttestationFailure] {
        var failures: [AttestationFailure] = []
        if requireSafe && !clock.safe {
            failures.append(.init(.clockUnsafe, "clockInfo.safe is NO: the TPM clock may have gone back since it was last reported"))
        }
        guard let previous else { return failures }
        if clock.resetCount < previous.resetCount {
            failures.append(.init(
                .resetCountWentBack,
                "resetCount \(clock.resetCount) is lower than \(previous.resetCount) in the last verified quote: an old quote replayed"))
        } else if clock.resetCount == previous.resetCount && clock.restartCount < previous.restartCount {
            failures.append(.init(
                .restartCountWentBack,
                "restartCount \(clock.restartCount) is lower than \(previous.restartCount) in the last verified quote of this boot: an old quote replayed"))
        }
        if clock.clock <= previous.clock {
            failures.append(.init(
                .clockWentBack,
                "clock \(clock.clock) ms is not later than \(previous.clock) ms in the last verified quote: an old quote replayed"))
        }
        return failures
    }
}
