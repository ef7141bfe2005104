//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel

/// The canonical DTB of a description, through the validation gate (as `build` does).
func encodeDTB(_ spec: LaunchSpec) throws -> [UInt8] { try LaunchEncoder.dtb(spec.validated()) }

/// The canonical DTS of a description, through the validation gate.
func encodeDTS(_ spec: LaunchSpec) throws -> String { try LaunchEncoder.dts(spec.validated()) }
