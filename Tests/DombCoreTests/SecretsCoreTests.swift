//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// The pure parts of sealing: the external key's public area, the signed-policy and
/// sealed-file codecs, `--secret` bindings. (The digests are checked against tpm2-tools'
/// trial sessions in DombTPMTests, which have a hash.)
@Suite struct SecretsCoreTests {
    static let x = [UInt8](repeating: 0x11, count: 32)
    static let y = [UInt8](repeating: 0x22, count: 32)

    /// The area tpm2_loadexternal -G ecc builds (read back with `tpm2_readpublic -f tpmt`
    /// on swtpm): ECC, nameAlg SHA-256, 0x00060040, no policy, null symmetric and scheme,
    /// curve, null kdf, then the two coordinates.
    @Test func eccAreaIsTpm2LoadexternalsArea() throws {
        let area = try ExternalSigningKey(.ecc(curve: .nistP256, x: Self.x, y: Self.y)).tpmtPublic
        let header: [UInt8] = [0x00, 0x23, 0x00, 0x0B, 0x00, 0x06, 0x00, 0x40, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0x03, 0x00, 0x10]
        #expect(Array(area.prefix(header.count)) == header)
        #expect(area.count == header.count + 2 + 32 + 2 + 32)
        #expect(Array(area[header.count..<header.count + 2]) == [0x00, 0x20])
        // Short coordinates are left-padded to the field size, as OpenSSL's fixed encoding.
        let short = try ExternalSigningKey(.ecc(curve: .nistP256, x: [0] + Array(Self.x.dropFirst()), y: Self.y)).tpmtPublic
        let unpadded = try ExternalSigningKey(.ecc(curve: .nistP256, x: Array(Self.x.dropFirst()), y: Self.y)).tpmtPublic
        #expect(unpadded == short)
        #expect(unpadded.count == area.count)
        #expect(throws: ParseError.self) { try ExternalSigningKey(.ecc(curve: .nistP256, x: Self.x + [1], y: Self.y)) }
    }

    @Test func rsaAreaWritesTheDefaultExponentAsZero() throws {
        let modulus = [UInt8](repeating: 0xC5, count: 384)
        let area = try ExternalSigningKey(.rsa(modulus: modulus, exponent: 65537)).tpmtPublic
        // type, nameAlg, attributes, authPolicy, symmetric, scheme, keyBits 3072, exponent 0.
        #expect(Array(area.prefix(20)) == [0x00, 0x01, 0x00, 0x0B, 0x00, 0x06, 0x00, 0x40, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x0C, 0x00, 0, 0, 0, 0])
        #expect(Array(area[20..<22]) == [0x01, 0x80])
        let odd = try ExternalSigningKey(.rsa(modulus: modulus, exponent: 3)).tpmtPublic
        #expect(Array(odd[16..<20]) == [0, 0, 0, 3])
        #expect(throws: ParseError.self) { try ExternalSigningKey(.rsa(modulus: [UInt8](repeating: 1, count: 125), exponent: 0)) }
    }

    static func policy(_ banks: [HashAlgorithm] = [.sha1, .sha256], refs: [[UInt8]] = [[]]) -> SignedPCRPolicy {
        var policies: [SignedPCRPolicy.Policy] = []
        for bank in banks {
            for ref in refs {
                let size = bank.digestSize ?? 0
                policies.append(
                    .init(
                        bank: bank, pcrs: [12, 13], pcrValues: [12: [UInt8](repeating: 1, count: size), 13: [UInt8](repeating: 2, count: size)],
                        policyRef: ref, policyDigest: [UInt8](repeating: 3, count: 32), signature: [0x30, 0x06, 1, 2, 3, 4, 5, 6]))
            }
        }
        return SignedPCRPolicy(
            publicKeyPEM: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", keyName: [0x00, 0x0B] + [UInt8](repeating: 9, count: 32),
            keyFingerprint: [UInt8](repeating: 8, count: 32), policies: policies)
    }

    /// Re-serialises `policy` after `edit` on its JSON (to make malformed files).
    static func edited(_ policy: SignedPCRPolicy, _ edit: (inout [String: JSONValue]) -> Void) -> [UInt8] {
        guard case .object(var root) = policy.json else { return [] }
        edit(&root)
        return JSONValue.object(root).canonicalBytes
    }

    @Test func signedPolicyRoundTripsAndRefusesWhatIsWrong() throws {
        let policy = Self.policy(refs: [[], Array("storage".utf8)])
        let parsed = try SignedPCRPolicy(canonicalBytes: policy.canonicalBytes)
        #expect(parsed == policy)
        #expect(parsed.policy(bank: .sha256, policyRef: Array("storage".utf8))?.selection.description == "sha256:12,13")
        #expect(parsed.policy(bank: .sha384, policyRef: []) == nil)

        func refusal(_ bytes: [UInt8]) -> String {
            do {
                _ = try SignedPCRPolicy(canonicalBytes: bytes)
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(refusal(Self.edited(policy) { $0["extra"] = .integer(1) }).contains("unknown key \"extra\""))
        #expect(refusal(Self.edited(policy) { $0["formatVersion"] = .integer(2) }).contains("formatVersion 2 is not supported"))
        #expect(refusal(Self.edited(policy) { $0["keyName"] = .string("000b" + String(repeating: "AB", count: 32)) }).contains("keyName is not lower-case hex"))
        #expect(refusal(Self.edited(policy) { $0["keyName"] = .string("0004" + String(repeating: "ab", count: 32)) }).contains("not a SHA-256 name"))
        #expect(refusal(Self.edited(policy) { $0["policies"] = .array([]) }).contains("non-empty"))
        let twice = SignedPCRPolicy(
            publicKeyPEM: policy.publicKeyPEM, keyName: policy.keyName, keyFingerprint: policy.keyFingerprint,
            policies: [policy.policies[0], policy.policies[0]])
        #expect(refusal(twice.canonicalBytes).contains("a second policy for bank sha1"))
        var unsorted = Self.policy([.sha256])
        unsorted.policies[0].pcrs = [13, 12]
        #expect(refusal(unsorted.canonicalBytes).contains("not ascending"))
        var missing = Self.policy([.sha256])
        missing.policies[0].pcrValues[13] = nil
        #expect(refusal(missing.canonicalBytes).contains("exactly the PCRs"))
        var short = Self.policy([.sha256])
        short.policies[0].pcrValues[13] = [1, 2]
        #expect(refusal(short.canonicalBytes).contains("is 2 bytes, expected 32"))
        var longRef = Self.policy([.sha256])
        longRef.policies[0].policyRef = [UInt8](repeating: 0x41, count: 65)
        #expect(refusal(longRef.canonicalBytes).contains("more than 64"))
        #expect(refusal(policy.canonicalBytes + [0x0A]).contains("canonical"))
        // The caps: 64 policies parse, 65 do not; nor does a file past maximumSize.
        let refs = (0...SignedPCRPolicy.maximumPolicies).map { Array("ref-\($0)".utf8) }
        let atCap = Self.policy([.sha256], refs: Array(refs.prefix(SignedPCRPolicy.maximumPolicies)))
        #expect(try SignedPCRPolicy(canonicalBytes: atCap.canonicalBytes).policies.count == SignedPCRPolicy.maximumPolicies)
        #expect(refusal(Self.policy([.sha256], refs: refs).canonicalBytes).contains("more than \(SignedPCRPolicy.maximumPolicies)"))
        #expect(refusal([UInt8](repeating: 0x20, count: SignedPCRPolicy.maximumSize + 1)).contains("more than \(SignedPCRPolicy.maximumSize)"))
    }

    static func sealed(requiresPIN: Bool = false) -> SealedSecret {
        let authPolicy = [UInt8](repeating: 0xA5, count: 32)
        // A keyedhash TPM2B_PUBLIC: type 0x0008, nameAlg, attributes, the authPolicy, null scheme, empty unique.
        var area: [UInt8] = [0x00, 0x08, 0x00, 0x0B, 0x00, 0x00, 0x00, 0x12, 0x00, 0x20] + authPolicy + [0x00, 0x10, 0x00, 0x00]
        area = [UInt8(area.count >> 8), UInt8(area.count & 0xFF)] + area
        return SealedSecret(
            parent: .storageRootKey(name: [0x00, 0x0B] + [UInt8](repeating: 4, count: 32)),
            policyKeyName: [0x00, 0x0B] + [UInt8](repeating: 5, count: 32), policyKeyFingerprint: [UInt8](repeating: 6, count: 32),
            policyRef: Array("storage".utf8), requiresPIN: requiresPIN, authPolicy: authPolicy, publicArea: area,
            privateArea: [0x00, 0x04, 1, 2, 3, 4])
    }

    @Test func sealedFileRoundTripsAndRefusesWhatIsWrong() throws {
        let sealed = Self.sealed()
        #expect(try SealedSecret(fileBytes: sealed.fileBytes) == sealed)
        // People reformat JSON: whitespace is fine.
        let pretty = Array(String(decoding: sealed.fileBytes, as: UTF8.self).replacingOccurrences(of: ",", with: ",\n  ").utf8)
        #expect(try SealedSecret(fileBytes: pretty) == sealed)

        func refusal(_ edit: (inout [String: JSONValue]) -> Void) -> String {
            guard case .object(var root) = sealed.json else { return "" }
            edit(&root)
            do {
                _ = try SealedSecret(fileBytes: JSONValue.object(root).canonicalBytes)
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(refusal { $0["format"] = .string("domb-launch-bundle") }.contains("not a domb sealed secret"))
        #expect(refusal { $0["authPolicy"] = .string(String(repeating: "00", count: 32)) }.contains("another authPolicy"))
        #expect(refusal { $0["parent"] = .object(["template": .string("rsa2048-srk"), "name": .string("")]) }.contains("rsa2048-srk"))
        #expect(refusal { $0["private"] = .string("0009aabb") }.contains("TPM2B_PRIVATE"))
        #expect(refusal { $0["public"] = .string("00060001000b0000") }.contains("not a sealed data object"))
        #expect(refusal { $0["pin"] = .string("yes") }.contains("true or false"))
        #expect(throws: ParseError.self) { try SealedSecret(fileBytes: [UInt8](repeating: 0x20, count: SealedSecret.maximumFileSize + 1)) }
    }

    /// The fuzzer's seeds (FuzzTesting/make-seeds.sh) are documents the parsers accept.
    @Test func fuzzSeedsParse() throws {
        let seeds = "\(Repository.root)/FuzzTesting/Seeds/FuzzBundle"
        let policy = try SignedPCRPolicy(canonicalBytes: Array(try Data(contentsOf: URL(fileURLWithPath: "\(seeds)/pcr-policy.json"))))
        #expect(policy.policies.map(\.bank) == [.sha256, .sha1])
        let sealed = try SealedSecret(fileBytes: Array(try Data(contentsOf: URL(fileURLWithPath: "\(seeds)/secret.sealed"))))
        #expect(sealed.policyRef == Array("storage".utf8))
    }

    @Test func secretBindings() throws {
        let plain = try SecretSpec.parseBinding("storage=/var/lib/domb/storage-disk.sealed")
        #expect(plain.domain == "storage")
        #expect(plain.secret == SecretSpec(name: "storage-disk", sealedPath: "/var/lib/domb/storage-disk.sealed", delivery: .file))
        let guest = try SecretSpec.parseBinding("web=creds.sealed,to=xenstore,name=api-token")
        #expect(guest.secret == SecretSpec(name: "api-token", sealedPath: "creds.sealed", delivery: .xenstore))
        #expect(SecretSpec.xenstorePath(domid: 7, name: "api-token") == "/local/domain/7/domb/secrets/api-token")
        for bad in ["storage", "=x.sealed", "../x=y.sealed", "storage=", "storage=a.sealed,to=nfs", "storage=a.sealed,name=../x", "storage=a.sealed,mode=1"] {
            #expect(throws: ParseError.self, "\(bad)") { try SecretSpec.parseBinding(bad) }
        }
    }
}
