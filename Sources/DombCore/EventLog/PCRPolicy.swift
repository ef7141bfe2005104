//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// Which PCR each kind of measurement goes to, and which banks the TPM must have active:
/// `policies/pcr-policy.json` (DESIGN decision 4).
///
/// ```json
/// {"version": 1, "pcrs": {"configuration": 12, "commandLine": 12, "image": 13},
///  "requiredBanks": ["sha256"]}
/// ```
/// PCRs 12 and 13 are used by neither firmware, GRUB nor IMA on a GRUB-booted Xen host,
/// and both are extendable from locality 0.
public struct PCRPolicy: Hashable, Sendable, Codable {
    public struct PCRs: Hashable, Sendable, Codable {
        /// Launch configuration (launch DTB, domain configuration, Xenstore plan).
        public var configuration: Int
        /// Kernel command lines.
        public var commandLine: Int
        /// Domain images: kernels, ramdisks, firmware, device-tree modules.
        public var image: Int

        public init(configuration: Int, commandLine: Int, image: Int) {
            self.configuration = configuration
            self.commandLine = commandLine
            self.image = image
        }
    }

    public static let currentVersion = 1
    /// Largest policy file read.
    public static let maximumSize = 64 << 10

    public var version: Int
    public var pcrs: PCRs
    /// Banks the TPM must have active; domb refuses to measure otherwise. domb always
    /// extends every active bank, required or not.
    public var requiredBanks: [HashAlgorithm]

    /// The built-in default, identical to `policies/pcr-policy.json`.
    public static let `default` = PCRPolicy(
        version: currentVersion, pcrs: PCRs(configuration: 12, commandLine: 12, image: 13), requiredBanks: [.sha256])

    public init(version: Int, pcrs: PCRs, requiredBanks: [HashAlgorithm]) {
        self.version = version
        self.pcrs = pcrs
        self.requiredBanks = requiredBanks
    }

    /// PCRs a process at locality 0 can extend: 0–16 and 23 (PC Client PTP §4.5.2; 17–22
    /// need localities 2–4).
    public static func isExtendableFromLocality0(_ pcr: Int) -> Bool {
        (0...16).contains(pcr) || pcr == 23
    }

    /// Decodes and checks a policy.
    ///
    /// - Throws: ``ParseError`` naming the field.
    public init(json: [UInt8]) throws(ParseError) {
        guard json.count <= Self.maximumSize else {
            throw .limit("PCR policy is \(json.count) bytes, more than \(Self.maximumSize)")
        }
        let decoded = try JSONInput.decode(PCRPolicy.self, from: json, what: "PCR policy")
        try decoded.validate()
        self = decoded
    }

    /// Checks version, PCR ranges and banks.
    /// The PCR an inline configuration record of `kind` goes to: command lines to
    /// ``PCRs/commandLine``, everything else to ``PCRs/configuration``.
    public func pcr(forConfigurationKind kind: String) -> Int {
        kind == "cmdline" ? pcrs.commandLine : pcrs.configuration
    }

    public func validate() throws(ParseError) {
        guard version == Self.currentVersion else {
            throw ParseError(.unsupported, "PCR policy version \(version), expected \(Self.currentVersion)")
        }
        for (name, pcr) in [("configuration", pcrs.configuration), ("commandLine", pcrs.commandLine), ("image", pcrs.image)] {
            guard Self.isExtendableFromLocality0(pcr) else {
                throw .invalid("PCR policy: pcrs.\(name) = \(pcr) is not a PCR domb can extend (0–16 or 23)")
            }
        }
        for bank in requiredBanks where bank.digestSize == nil {
            throw .invalid("PCR policy: requiredBanks names unknown bank \(bank)")
        }
    }
}
