//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Names and limits of the members of a launch bundle (docs/bundle.md, "Layout").
///
/// Every member except the manifest and its signature is listed in the manifest with its
/// size and digests, so the signature over the manifest covers every byte of the bundle.
public enum BundleLayout {
    /// The canonical JSON manifest, the signed content.
    public static let manifest = "manifest.json"
    /// CMS/PKCS#7 SignedData over the manifest, detached, DER.
    public static let cmsSignature = "manifest.sig"
    /// A raw signature over the manifest (ECDSA DER, RSA-PSS or Ed25519).
    public static let rawSignature = "manifest.rawsig"
    /// The signer certificate and chain in PEM, for readers using the OpenSSL CLI (CMS mode).
    public static let signerCertificates = "signer.pem"
    /// The launch device tree the boot domain hands to Xen.
    public static let launchDTB = "launch.dtb"
    /// The Xenstore prepopulation plan.
    public static let xenstorePlan = "xenstore-plan.json"
    /// The predicted TCG event log (PC Client crypto-agile format).
    public static let predictedEventLog = "eventlog.predicted"
    /// The signed PCR policy (``SignedPCRPolicy``), when built with a PCR-policy key.
    public static let signedPCRPolicy = "pcr-policy.json"
    /// Folder of the domain images: `modules/<domain>/<role>`.
    public static let modulesDirectory = "modules"

    /// Most members a bundle may hold: the modules of the largest launch
    /// (`LaunchLimits.maxModules`) and the metadata members.
    public static let maximumMembers = 16384
    /// Largest manifest accepted: an entry per module of the largest launch, in every bank.
    public static let maximumManifestSize = 16 << 20
    /// Largest signature member accepted (a CMS blob with a few certificates is a few KiB).
    public static let maximumSignatureSize = 256 << 10
    /// Largest non-module member (launch DTB, Xenstore plan, event log, signer certificates):
    /// the Xenstore plan of the largest launch `LaunchLimits` allows fits (tested).
    public static let maximumMetadataSize = 256 << 20
    /// Largest module (kernel, ramdisk, firmware) accepted.
    public static let maximumModuleSize: UInt64 = 4 << 30
    /// Longest domain name or module role usable as a path component.
    public static let maximumComponentLength = 64

    /// The roles of a domain's modules, in order: the kind's name, and for a second module
    /// of the same kind `-1`, `-2`, … (`kernel`, `ramdisk`, `ramdisk-1`).
    public static func moduleRoles(_ kinds: [ModuleKind]) -> [String] {
        var counts: [ModuleKind: Int] = [:]
        return kinds.map { kind in
            let index = counts[kind, default: 0]
            counts[kind] = index + 1
            return index == 0 ? kind.rawValue : "\(kind.rawValue)-\(index)"
        }
    }

    /// The path of a module inside the bundle.
    public static func modulePath(domain: String, role: String) -> String {
        "\(modulesDirectory)/\(domain)/\(role)"
    }

    /// Whether `name` is a safe single path component: `[A-Za-z0-9._-]`, not `.` or `..`,
    /// not starting with `-` or `.`, at most ``maximumComponentLength`` bytes.
    public static func isSafeComponent(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumComponentLength else { return false }
        guard bytes[0] != UInt8(ascii: "."), bytes[0] != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }

    /// Whether `path` is a relative path of safe components (no `..`, no absolute path, no
    /// empty component), at most four deep.
    public static func isSafePath(_ path: String) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...4).contains(components.count) else { return false }
        return components.allSatisfy(isSafeComponent)
    }

    /// Whether `path` names a module member.
    public static func isModulePath(_ path: String) -> Bool { path.hasPrefix(modulesDirectory + "/") }

    /// The size cap for a member at `path`.
    public static func sizeLimit(for path: String) -> UInt64 {
        switch path {
        case manifest: UInt64(maximumManifestSize)
        case cmsSignature, rawSignature: UInt64(maximumSignatureSize)
        default: isModulePath(path) ? maximumModuleSize : UInt64(maximumMetadataSize)
        }
    }
}
