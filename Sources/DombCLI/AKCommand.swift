//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import DombCrypto
import DombTPM
import Foundation

/// `domb ak …`: the attestation key.
struct AKCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ak",
        abstract: "Manage the attestation key (AK) that signs quotes.",
        subcommands: [Create.self, Show.self, Enroll.self, Activate.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a restricted signing key, make it persistent, and export its public part as PEM.",
            discussion: """
                The key is a primary key of the endorsement hierarchy (or the storage hierarchy \
                with --storage), with the attributes tpm2_createak uses: fixedTPM, fixedParent, \
                sensitiveDataOrigin, userWithAuth, restricted, sign. ECC P-256 with ECDSA-SHA256 by \
                default; --rsa gives RSASSA-SHA256. Its TPM name is written to OUTPUT.name (hex).
                """ + "\n\n" + ExitStatus.help(success: "the key was created and written", refused: "the TPM refused"))

        @OptionGroup var tpm: TPMOptions
        @Flag(help: "ECC NIST P-256, ECDSA-SHA256 (default).") var ecc = false
        @Flag(help: "RSA with RSASSA-SHA256.") var rsa = false
        @Option(help: "RSA key size: 2048 or 3072.") var rsaBits: Int = 2048
        @Flag(help: "Create the key under the storage (owner) hierarchy instead of the endorsement hierarchy.")
        var storage = false
        @Option(help: "Persistent handle for the key.") var handle: String = TPM.defaultAttestationKeyHandleText
        @Option(name: .shortAndLong, help: "Where to write the AK public key (PEM).") var output: String

        func validate() throws {
            if ecc && rsa { throw ValidationError("give --ecc or --rsa, not both") }
            _ = try AttestationIO.parseHandle(handle)
            guard rsaBits == 2048 || rsaBits == 3072 else { throw ValidationError("--rsa-bits must be 2048 or 3072") }
        }

        func run() async throws {
            // The outputs are checked (and their temporary files made) before the key is
            // created, so a refused path leaves no key behind without its public half.
            let publicFile = try AtomicFile(path: output)
            let nameFile = try AtomicFile(path: output + ".name")
            let connection = try tpm.open()
            defer { connection.close() }
            let info = try connection.createAttestationKey(
                algorithm: rsa ? .rsa(bits: rsaBits) : .eccP256, hierarchy: storage ? .storage : .endorsement,
                handle: try AttestationIO.parseHandle(handle))
            let pem = try PublicKey(info.publicKey).pem()
            try publicFile.replaceContents(Array(pem.utf8))
            try nameFile.replaceContents(Array((info.name.hexString + "\n").utf8))
            try publicFile.commit()
            try nameFile.commit()
            print("AK 0x\(String(info.handle, radix: 16)) (\(info.scheme)-\(info.hash), \(storage ? "storage" : "endorsement") hierarchy)")
            print("name:       \(info.name.hexString)")
            print("public key: \(output)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the public key (PEM) and name of a persistent AK.",
            discussion: ExitStatus.help(success: "the key was printed", refused: "the TPM refused (no AK at the handle)"))

        @OptionGroup var tpm: TPMOptions
        @Option(help: "Persistent handle of the key.") var handle: String = TPM.defaultAttestationKeyHandleText

        func run() async throws {
            let connection = try tpm.open()
            defer { connection.close() }
            let info = try connection.readAttestationKey(handle: try AttestationIO.parseHandle(handle))
            print("# name: \(info.name.hexString) (\(info.scheme)-\(info.hash))")
            print(try PublicKey(info.publicKey).pem(), terminator: "")
        }
    }
}

/// File and argument helpers of the attestation commands.
enum AttestationIO {
    /// Parses a TPM handle given in hex ("0x81000100") or decimal.
    static func parseHandle(_ text: String) throws -> UInt32 {
        let lowered = text.lowercased()
        let value = lowered.hasPrefix("0x") ? UInt32(lowered.dropFirst(2), radix: 16) : UInt32(lowered)
        guard let value, TPM.persistentHandleRange.contains(value) else {
            throw ValidationError("bad handle \"\(text)\": expected a persistent handle 0x81000000–0x817fffff")
        }
        return value
    }

    /// Reads a whole file (``InputFile``), refusing anything larger than `limit`.
    static func readFile(_ path: String, limit: Int, what: String) throws -> [UInt8] {
        do {
            return try InputFile.read(path, limit: limit)
        } catch {
            throw AttestationCLIError("\(what) \(error)")
        }
    }

    /// Parses a hex nonce of 1 to 64 bytes.
    static func parseNonce(_ text: String) throws -> [UInt8] {
        guard let bytes = [UInt8](hex: text), !bytes.isEmpty, bytes.count <= TPM.maximumNonceSize else {
            throw ValidationError("bad nonce \"\(text)\": give 1 to \(TPM.maximumNonceSize) bytes in hex")
        }
        return bytes
    }
}

/// A message-only error for the attestation commands.
struct AttestationCLIError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
