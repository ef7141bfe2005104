//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCLI

@main
struct Entrypoint {
    static func main() async {
        await DombMain.main()
    }
}
