//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombFiles
import DombModel

/// `--dot`, `--svg`, `--png` and `-o` of the commands that draw a launch
/// (``LaunchTopology``): `config show`, `bundle show`.
struct PictureOptions: ParsableArguments {
    init() {}

    @Flag(help: "Draw the system as a Graphviz DOT graph (domains, cpupools, PV devices, event channels, shared memory).")
    var dot = false
    @Flag(help: "Draw it as SVG, through Graphviz's dot (Debian package graphviz).") var svg = false
    @Flag(help: "Draw it as PNG, through Graphviz's dot (Debian package graphviz).") var png = false
    @Option(name: .shortAndLong, help: "Write the picture to this file instead of standard output.") var output: String?

    func validate() throws {
        guard [dot, svg, png].filter({ $0 }).count <= 1 else { throw ValidationError("give at most one of --dot, --svg, --png") }
        guard output == nil || isDrawing else { throw ValidationError("-o writes a picture: give --dot, --svg or --png") }
    }

    var isDrawing: Bool { dot || svg || png }

    /// Writes `graph` (DOT), or what dot renders of it, to `-o` (atomically, never over
    /// one of `inputs`) or standard output.
    func write(_ graph: String, inputs: [String]) throws {
        let bytes: [UInt8] =
            if svg { try Graphviz.render(graph, as: .svg) } else if png { try Graphviz.render(graph, as: .png) } else { Array(graph.utf8) }
        let target = output ?? "-"
        if try OutputTarget.writeThrough(bytes, to: target) { return }
        try AtomicFile.write(bytes, to: target, inputs: inputs)
    }
}
