//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombLaunch
import DombModel

/// The options of every command that reads a launch description: the image files of the
/// module nodes a tree written for upstream Xen locates in memory (docs/binding.md,
/// "Trees written for upstream Xen").
struct LaunchInputOptions: ParsableArguments {
    @Option(
        name: .customLong("module"),
        help: ArgumentHelp(
            "The image file of a module node the device tree locates by reg or module-index (repeatable). NODE is the node's path, DOMAIN/NODE-NAME or DOMAIN/KIND (domU1/kernel); PATH is read from the current directory.",
            valueName: "NODE=PATH"))
    var modules: [String] = []

    func validate() throws {
        _ = try moduleFiles()
    }

    func moduleFiles() throws -> [ModuleFileArgument] {
        var files: [ModuleFileArgument] = []
        for text in modules {
            do throws(ParseError) {
                files.append(try ModuleFileArgument(parsing: text))
            } catch {
                throw ValidationError(error.reason)
            }
        }
        return files
    }

    /// What ``LaunchFile`` reads descriptions with.
    func loadOptions() throws -> LaunchLoadOptions { LaunchFileLoader.options(moduleFiles: try moduleFiles()) }

    /// The loader `build`, `config check` and `xenstore plan` pass descriptions through.
    func loader(checkImages: Bool) throws -> LaunchFileLoader {
        LaunchFileLoader(checkImages: checkImages, moduleFiles: try moduleFiles())
    }
}
