//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// domb's version, printed by `domb --version` and recorded in manifests and event logs.
public enum DombVersion {
    public static let current = "0.1.0"
}
