//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension BundleManifest {
    /// The modules, one row each in launch order: domain, role, archive member, size in
    /// bytes, SHA-256 in full (what `sha256sum` of the extracted member prints; `-` when the
    /// manifest has none). Cells are the manifest's untrusted text: ``TextTable`` escapes them.
    public var moduleTable: TextTable {
        var table = TextTable([.init("DOMAIN"), .init("ROLE"), .init("MEMBER"), .init("SIZE", .right), .init("SHA256")])
        for domain in domains {
            for module in domain.modules {
                table.append([domain.name, module.role, module.member.path, "\(module.member.size)", Self.sha256(module.member)])
            }
        }
        return table
    }

    /// The members that configure the launch rather than being loaded into a domain:
    /// launch DTB, Xenstore plan, predicted event log, signer certificates, signed PCR policy.
    public var configurationTable: TextTable {
        var table = TextTable([.init("MEMBER"), .init("SIZE", .right), .init("SHA256")])
        for member in [launchDTB, xenstorePlan, predictedEventLog, signerCertificates, signedPCRPolicy].compactMap({ $0 }) {
            table.append([member.path, "\(member.size)", Self.sha256(member)])
        }
        return table
    }

    private static func sha256(_ member: BundleMember) -> String {
        member.digests[.sha256].map(\.hexString) ?? "-"
    }
}
