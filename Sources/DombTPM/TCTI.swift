//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Where the TPM is: a tctildr configuration string as tpm2-tools takes it.
///
/// Accepted forms: `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`, `mssim:…`, and
/// a bare device path. With nothing given, `TPM2TOOLS_TCTI` (then `TCTI`) is honoured as
/// tpm2-tools does, and the default is the kernel resource manager, `device:/dev/tpmrm0`.
public struct TCTIConfiguration: Hashable, Sendable, CustomStringConvertible {
    /// The TCTI library name (`device`, `swtpm`, `mssim`, …).
    public var name: String
    /// The part after the colon, handed to that TCTI.
    public var configuration: String

    public static let defaultDevice = TCTIConfiguration(name: "device", configuration: "/dev/tpmrm0")

    public init(name: String, configuration: String) {
        self.name = name
        self.configuration = configuration
    }

    /// Parses a TCTI string; throws for an empty or malformed one.
    public init(parsing text: String) throws(TPMError) {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .usage("TCTI", "empty TCTI string") }
        if trimmed.hasPrefix("/") {
            self.init(name: "device", configuration: trimmed)
            return
        }
        if let colon = trimmed.firstIndex(of: ":") {
            let name = String(trimmed[..<colon])
            let configuration = String(trimmed[trimmed.index(after: colon)...])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw .usage("TCTI", "malformed TCTI \"\(text)\": expected NAME:CONFIG, e.g. device:/dev/tpmrm0")
            }
            self.init(name: name, configuration: configuration)
        } else {
            guard trimmed.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw .usage("TCTI", "malformed TCTI \"\(text)\": expected NAME:CONFIG, e.g. device:/dev/tpmrm0")
            }
            self.init(name: trimmed, configuration: "")
        }
    }

    /// The explicit string if given, else `TPM2TOOLS_TCTI`, else `TCTI`, else the default device.
    public static func resolve(_ explicit: String?, environment: [String: String]) throws(TPMError) -> TCTIConfiguration {
        if let explicit { return try TCTIConfiguration(parsing: explicit) }
        for key in ["TPM2TOOLS_TCTI", "TCTI"] {
            if let value = environment[key], !value.isEmpty { return try TCTIConfiguration(parsing: value) }
        }
        return .defaultDevice
    }

    /// The string Tss2_TctiLdr_Initialize takes.
    public var description: String { configuration.isEmpty ? name : "\(name):\(configuration)" }

    /// A file name that is the same for every spelling of the same TPM, for locks held per
    /// TPM: `/dev/tpmrm0` and `/dev/tpm0` are one TPM (the resource manager in front of
    /// it); `localhost` is `127.0.0.1`; the option order of a simulator's string does not
    /// matter. Only `[A-Za-z0-9._-]`.
    public var lockName: String {
        var text: String
        switch name {
        case "device":
            var path = configuration.isEmpty ? TCTIConfiguration.defaultDevice.configuration : configuration
            if path.hasPrefix("/dev/tpmrm") { path = "/dev/tpm" + path.dropFirst("/dev/tpmrm".count) }
            text = "device" + path.replacingSlashes()
        default:
            var options: [String: String] = [:]
            for option in configuration.split(separator: ",") {
                let pair = option.split(separator: "=", maxSplits: 1).map(String.init)
                options[pair[0]] = pair.count == 2 ? pair[1] : ""
            }
            if name == "swtpm" || name == "mssim" {
                // tpm2-tss's defaults for the simulators: host localhost, port 2321.
                if options["host"] == nil || options["host"] == "localhost" { options["host"] = "127.0.0.1" }
                if options["port"] == nil { options["port"] = "2321" }
            }
            text = ([name] + options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "-")
        }
        return String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "_" })
    }
}

extension String {
    fileprivate func replacingSlashes() -> String { String(map { $0 == "/" ? "-" : $0 }) }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
