//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombCrypto
import DombFiles
import DombTPM
import Foundation

/// `domb quote`: a TPM quote over the launch PCRs, with everything a verifier needs.
struct QuoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote",
        abstract: "Quote PCRs with the attestation key and write the evidence for `domb attest verify`.",
        discussion: """
            Writes OUTPUT (JSON, format domb-quote/1: the exact TPMS_ATTEST bytes, the signature, \
            the PCR values read in the same selection, the AK public key and the event log; see \
            docs/attestation.md) and, beside it, the tpm2-tools trio BASE.msg (TPMS_ATTEST), \
            BASE.sig (signature, plain format) and BASE.pcrs (PCR values in selection order, as \
            tpm2_pcrread -o writes them), where BASE is OUTPUT without ".json". Check them with:
              tpm2_checkquote -u AK.pub.pem -m BASE.msg -s BASE.sig -f BASE.pcrs -l SELECTION -g sha256 -q NONCE
            """ + "\n\n" + ExitStatus.help(success: "the quote was written", refused: "the TPM refused, or the event log was refused"))

    /// Attempts when the PCRs change between the quote and the PCR read.
    static let maximumAttempts = 3

    @OptionGroup var tpm: TPMOptions
    @Option(help: "Persistent handle of the attestation key.") var ak: String = TPM.defaultAttestationKeyHandleText
    @Option(help: "The verifier's nonce in hex (1 to 64 bytes).") var nonce: String
    @Option(help: "PCRs to quote, tpm2-tools syntax: sha256:12,13[+sha1:12,13].") var pcrs: String = "sha256:12,13"
    @Option(help: "TCG event log to send with the quote.") var eventlog: String?
    @Option(name: .shortAndLong, help: "Where to write the quote (JSON).") var output: String

    func validate() throws {
        _ = try AttestationIO.parseHandle(ak)
        _ = try AttestationIO.parseNonce(nonce)
        _ = try PCRSelection(parsing: pcrs)
    }

    func run() async throws {
        let handle = try AttestationIO.parseHandle(ak)
        let nonceBytes = try AttestationIO.parseNonce(nonce)
        let selection = try PCRSelection(parsing: pcrs)
        let log = try eventlog.map { try AttestationIO.readFile($0, limit: QuoteFile.maximumEventLogSize, what: "event log") }
        // Every output is checked (and its temporary file made) before the TPM is asked.
        let base = output.hasSuffix(".json") ? String(output.dropLast(5)) : output
        let inputs = eventlog.map { [$0] } ?? []
        let quoteFile = try AtomicFile(path: output, inputs: inputs)
        let messageFile = try AtomicFile(path: base + ".msg", inputs: inputs)
        let signatureFile = try AtomicFile(path: base + ".sig", inputs: inputs)
        let pcrsFile = try AtomicFile(path: base + ".pcrs", inputs: inputs)

        let connection = try tpm.open()
        defer { connection.close() }
        let key = try connection.readAttestationKey(handle: handle)
        let pem = try PublicKey(key.publicKey).pem()

        // The PCRs are read after the quote; if something extended them in between, the
        // values would not match pcrDigest, so quote again.
        var attempt = 0
        var result: (TPMQuote, PCRValues)?
        while result == nil {
            attempt += 1
            let quote = try connection.quote(attestationKey: handle, nonce: nonceBytes, selection: selection)
            var values = PCRValues()
            for bank in selection.banks {
                let read = try connection.readPCRs(bank.pcrs, banks: [bank.algorithm])
                for pcr in bank.pcrs { values[bank.algorithm, pcr] = read[bank.algorithm, pcr] }
            }
            let attest = try TPMSAttest(parsing: quote.attest)
            let concatenated = selection.pairs.flatMap { values[$0.0, $0.1] ?? [] }
            if OpenSSLHashing().hash(concatenated, with: quote.hash) == attest.quote?.pcrDigest {
                result = (quote, values)
            } else if attempt >= Self.maximumAttempts {
                throw AttestationCLIError("the PCRs kept changing between TPM2_Quote and TPM2_PCR_Read (\(attempt) attempts)")
            }
        }
        guard let (quote, values) = result else { return }
        connection.close()

        let signatureBytes: [UInt8]
        switch quote.signature {
        case .ecdsa(let r, let s): signatureBytes = try ECDSASignature.der(r: r, s: s)
        case .rsa(let raw): signatureBytes = raw
        }
        let file = QuoteFile(
            attest: quote.attest, signature: QuoteSignature(scheme: quote.scheme, hash: quote.hash, bytes: signatureBytes),
            selection: selection, pcrValues: values, nonce: nonceBytes, akPublicKey: pem, akName: key.name, eventLog: log)
        try quoteFile.replaceContents(try file.jsonBytes())
        try messageFile.replaceContents(quote.attest)
        try signatureFile.replaceContents(signatureBytes)
        try pcrsFile.replaceContents(selection.pairs.flatMap { values[$0.0, $0.1] ?? [] })
        for written in [quoteFile, messageFile, signatureFile, pcrsFile] { try written.commit() }
        print("quote:      \(output) (\(quote.scheme)-\(quote.hash), \(selection))")
        print("tpm2-tools: \(base).msg \(base).sig \(base).pcrs")
    }
}
