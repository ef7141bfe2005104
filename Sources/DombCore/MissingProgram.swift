//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A program domb runs that is not installed, with the Debian package that has it.
public struct MissingProgram: Error, CustomStringConvertible, Sendable {
    public var program: String
    public var package: String
    public init(program: String, package: String) {
        self.program = program
        self.package = package
    }
    public var description: String { "\(program) is not installed" }
}
