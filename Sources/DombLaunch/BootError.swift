//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// Why a launch stopped. Every case names the stage and the domain, module or PCR.
public enum BootError: Error, CustomStringConvertible, Sendable {
    case build(domain: String, reason: String)
    case system(String, Int32)

    public var description: String {
        switch self {
        case let .build(domain, reason): "building domain \(domain): \(reason)"
        case let .system(what, code): "\(what): \(String(cString: strerror(code)))"
        }
    }
}
