//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel

extension BundleManifest {
    /// Checks that the manifest and the launch description decoded from `launch.dtb`
    /// describe the same launch: the same domains, and for each the same modules in the
    /// same order, each module node naming exactly its bundle member
    /// (`modules/<domain>/<role>`). A domain only in the manifest would be "verified" and
    /// then never booted; one only in the DTB would pass verification and fail at boot.
    public func launchDescriptionFailures(_ spec: LaunchSpec) -> [BundleFailure] {
        var failures: [BundleFailure] = []
        let dtb = BundleLayout.launchDTB
        // Looked up by name (linear in domains: issue 20); the manifest's names are unique.
        let listedByName = Dictionary(domains.map { ($0.name, $0) }) { first, _ in first }
        let specNames = Set(spec.domains.map(\.name))
        for name in domains.map(\.name) where !specNames.contains(name) {
            failures.append(BundleFailure(.launchDescription, member: dtb, "domain \(name) is in the manifest but not in the launch DTB"))
        }
        for domain in spec.domains where listedByName[domain.name] == nil {
            failures.append(BundleFailure(.launchDescription, member: dtb, "domain \(domain.name) is in the launch DTB but not in the manifest"))
        }
        for domain in spec.domains {
            guard let listed = listedByName[domain.name] else { continue }
            let roles = BundleLayout.moduleRoles(domain.modules.map(\.kind))
            let listedRoles = listed.modules.map(\.role)
            guard roles == listedRoles else {
                failures.append(
                    BundleFailure(
                        .launchDescription, member: dtb,
                        "domain \(domain.name): the launch DTB has modules [\(roles.joined(separator: ", "))], the manifest [\(listedRoles.joined(separator: ", "))]"))
                continue
            }
            for (module, entry) in zip(domain.modules, listed.modules) where module.path != entry.member.path {
                failures.append(
                    BundleFailure(
                        .launchDescription, member: dtb,
                        "domain \(domain.name): its \(entry.role) module names \"\(module.path)\", not the bundle member \(entry.member.path)"))
            }
        }
        return failures
    }
}
