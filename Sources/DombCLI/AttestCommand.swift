//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import DombCrypto
import DombLaunch
import Foundation

/// `domb attest …`: judge evidence from a deployed host.
struct AttestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attest",
        abstract: "Verify quotes from deployed hosts.",
        subcommands: [Verify.self, EnrollChallenge.self, EnrollComplete.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a quote written by `domb quote`; print every reason if it fails.",
            discussion: """
                Checks, with OpenSSL: the signature over the exact TPMS_ATTEST bytes with the AK; \
                magic and type; the nonce; that the quote selects exactly --pcrs (CVE-2022-0317); \
                that the PCR values sent hash to the signed pcrDigest; the golden values of \
                --expected-pcrs; and, with --state, that clock, resetCount and restartCount moved \
                forward since the last verified quote from this AK (clockInfo.safe must be YES). \
                When the quote carries an event log (domb quote --eventlog), the log is replayed per \
                bank against the quoted PCRs, every domb record is checked against its digests, and \
                the structure is checked: only module, configuration and separator events, one \
                separator per PCR and nothing after it, no event on an unquoted PCR, no PCR with a \
                value but no events. The state file is updated only when the quote verifies.
                """ + "\n\n" + ExitStatus.help(success: "the quote verifies", refused: "it is refused (every reason is printed; a quote, key, bundle or state file that cannot be used at all exits 2)"))

        @Argument(help: "The quote file (JSON) from `domb quote`.") var quote: String
        @Option(help: "The attestation key's public key (PEM) that the verifier trusts.") var akPub: String?
        @Option(help: "Instead of --ak-pub: the enrolment directory of `domb attest enroll-complete`; the quote's AK must be enrolled there (found by the quote's akName) and is verified with the recorded key.")
        var enrolled: String?
        @Option(help: "With --enrolled: the AK's name (hex), when the quote file does not carry it (a Keylime agent's answer does not).")
        var akName: String?
        @Option(help: "The nonce the verifier sent, in hex.") var nonce: String
        @Option(help: "Exactly the PCRs the quote must cover (tpm2-tools syntax). Default: those of --expected-pcrs, else sha256:12,13.")
        var pcrs: String?
        @Option(help: "Golden PCR values, JSON: {\"sha256\": {\"12\": \"<hex>\", …}}.") var expectedPcrs: String?
        @Option(help: "Clock state file (JSON), created if missing, updated when the quote verifies.") var state: String?
        @Flag(help: "Print the verdict as JSON.") var json = false
        @Flag(help: "Refuse a quote that carries no event log.") var requireEventlog = false
        @Option(help: "The signed launch bundle the host booted: its predicted event log gives the golden events and its predicted PCRs the golden values (needs the log in the quote, and one of --trust, --cert, --pubkey).")
        var bundle: String?
        @Option(help: "With --bundle: trust anchors for its CMS signature (a directory or CA file).") var trust: String?
        @Option(help: "With --bundle: its pinned signer certificate.") var cert: String?
        @Option(help: "With --bundle: the public key of its raw signature.") var pubkey: String?
        @Option(help: .hidden) var benchmarkIterations: Int = 0
        @OptionGroup var progressOptions: ProgressOptions

        static let maximumFileSize = QuoteFile.maximumEventLogSize * 2

        func validate() throws {
            if (akPub == nil) == (enrolled == nil) { throw ValidationError("give exactly one of --ak-pub FILE and --enrolled DIR") }
            let trustSources = [trust, cert, pubkey].compactMap { $0 }.count
            if bundle != nil, trustSources != 1 {
                throw ValidationError("--bundle needs exactly one of --trust DIR, --cert FILE, --pubkey FILE")
            }
            if bundle == nil, trustSources > 0 { throw ValidationError("--trust, --cert and --pubkey go with --bundle") }
            _ = try AttestationIO.parseNonce(nonce)
            _ = try pcrs.map(PCRSelection.init(parsing:))
        }

        func run() async throws {
            let inputs: (QuoteEvidence, PublicKey, PCRValues?, PCRSelection, AttestationState?)
            do {
                inputs = try loadInputs()
            } catch {
                throw Self.unusable(error)
            }
            let (evidence, key, givenExpected, givenSelection, stored) = inputs
            var expected = givenExpected
            var selection = givenSelection
            var golden: [GoldenEvent]?
            if let bundle {
                do {
                    let progress = progressOptions.progress("verifying", bundle, json: json)
                    defer { progress?.finish() }
                    let launch = try BundleGoldenValues(bundle: bundle, trust: try bundleTrust(), progress: progress?.bytes)
                    golden = launch.events
                    // The selection first: the golden values are those of the PCRs quoted
                    // (they were taken for the default 12,13 before the selection became
                    // the bundle's PCRs).
                    if pcrs == nil, givenExpected == nil { selection = try launch.defaultSelection() }
                    if expected == nil { expected = launch.expectedPCRs(for: selection) }
                } catch {
                    throw Self.unusable(ContextError(bundle, error))
                }
            }
            var policy = QuotePolicy(nonce: try AttestationIO.parseNonce(nonce), selection: selection, expectedPCRs: expected)
            // A log sent with the quote is always replayed and its structure checked; with
            // --bundle every event must also be the bundle's golden event, in order.
            if evidence.eventLog != nil || requireEventlog || golden != nil {
                policy.eventLog = .tcg(golden: golden)
            }
            let verifier = QuoteVerifier.openSSL(key: key)

            if benchmarkIterations > 0 {
                try benchmark(verifier, evidence, policy, stored)
                return
            }
            let verdict = verifier.verify(evidence, policy: policy, state: stored)
            let logNote =
                evidence.eventLog == nil
                ? "no event log: the PCR values are authenticated, what was measured into them is not"
                : bundle == nil
                    ? "event log replayed; golden events not checked (no --bundle): digests are authentic, module records' domains, roles, sizes and labels are claims (marked UNVERIFIED)"
                    : "event log replayed; every event is the bundle's golden event, whole record included"

            if case .verified(let verified) = verdict, let state {
                var updated = stored ?? AttestationState()
                updated.update(with: verified.attest)
                try AtomicFile.write(try updated.jsonBytes(), to: state, inputs: [quote] + [akPub].compactMap { $0 })
            }
            if json {
                print(try jsonText(QuoteVerdictReport(verdict, selection: selection, eventLogNote: logNote, hashing: verifier.hashing), format: .attestVerdict))
            } else {
                switch verdict {
                case .verified(let verified):
                    let clock = verified.attest.clockInfo
                    print("VERIFIED: quote \(quote) over \(verified.selection)")
                    print("  signer \(verified.attest.qualifiedSigner.hexString)")
                    print("  clock \(clock.clock) ms, resetCount \(clock.resetCount), restartCount \(clock.restartCount), safe")
                    for (bank, pcr) in verified.selection.pairs {
                        print("  \(bank):\(pcr) = \((verified.pcrValues[bank, pcr] ?? []).hexString)")
                    }
                    // Everything extended on the quoted PCRs, each marked with how far it is verified.
                    for event in verified.launchedEvents(hashing: verifier.hashing) {
                        print("  launched: \(event.line)")
                    }
                    print("  note: \(logNote)")
                case .failed(let failures):
                    print("REFUSED: quote \(quote): \(failures.count) reason\(failures.count == 1 ? "" : "s")")
                    // Reasons quote the log and the bundle: escaped before they reach a terminal.
                    for failure in failures { print("  - \(TerminalText.escape(failure.description))") }
                }
            }
            if !verdict.isVerified { throw ExitCode(ExitStatus.refused.rawValue) }
        }

        /// Input that cannot be used at all exits 2 (1 means the quote was judged and refused).
        static func unusable(_ error: any Error) -> ExitCode {
            var diagnostic = Diagnostics.diagnose(error)
            diagnostic.status = .cannotRun
            Diagnostics.print(diagnostic)
            return ExitCode(diagnostic.status.rawValue)
        }

        private func bundleTrust() throws -> BundleTrustPolicy {
            try bundleTrustPolicy(trust: trust, cert: cert, pubkey: pubkey)
        }

        private func loadInputs() throws -> (QuoteEvidence, PublicKey, PCRValues?, PCRSelection, AttestationState?) {
            let quoteBytes = try AttestationIO.readFile(quote, limit: Self.maximumFileSize, what: "quote file")
            var quoteFile: QuoteFile
            let evidence: QuoteEvidence
            if let answer = KeylimeQuote.Answer(json: quoteBytes) {
                // An answer of a Keylime agent's quotes endpoint (docs/keylime.md).
                (quoteFile, evidence) = try ContextError.wrap(quote) { try Self.keylimeEvidence(answer) }
            } else {
                quoteFile = try ContextError.wrap(quote) { try QuoteFile(json: quoteBytes) }
                evidence = try ContextError.wrap(quote) { try quoteFile.evidence() }
            }
            if let akName { quoteFile.akName = akName }
            let key: PublicKey
            if let enrolled {
                key = try Self.enrolledKey(for: quoteFile, in: enrolled)
            } else {
                let path = akPub ?? ""
                let keyBytes = try AttestationIO.readFile(path, limit: PublicKey.maximumPEMSize, what: "AK public key")
                key = try ContextError.wrap(path) { try PublicKey(pem: keyBytes) }
            }
            let expected = try expectedPcrs.map { path in
                let bytes = try AttestationIO.readFile(path, limit: 1 << 20, what: "expected PCRs")
                return try ContextError.wrap(path) { try PCRValues(goldenJSON: bytes) }
            }
            let selection: PCRSelection
            if let pcrs {
                selection = try PCRSelection(parsing: pcrs)
            } else if let expected {
                selection = PCRSelection(expected.algorithms.map { PCRSelection.Bank($0, expected.pcrs(in: $0)) })
            } else {
                selection = try PCRSelection(parsing: "sha256:12,13")
            }
            var stored: AttestationState?
            if let state {
                // Refused before anything is verified, not after the verdict.
                try OutputTarget.check(state, inputs: OutputTarget.identities([quote] + [akPub].compactMap { $0 }))
                do {
                    if let bytes = try InputFile.readIfPresent(state, limit: 1 << 20) {
                        stored = try ContextError.wrap(state) { try AttestationState(json: bytes) }
                    }
                } catch let error as FileError {
                    throw AttestationCLIError("state file \(error)")
                }
            }
            return (evidence, key, expected, selection, stored)
        }

        /// Verifies the same quote `benchmarkIterations` times (no state update) and prints the
        /// throughput in wall-clock time and per CPU second (the machine may be shared).
        private func benchmark(_ verifier: QuoteVerifier, _ evidence: QuoteEvidence, _ policy: QuotePolicy, _ state: AttestationState?) throws {
            func cpuSeconds() -> Double {
                var usage = rusage()
                getrusage(RUSAGE_SELF.rawValue, &usage)
                return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            }
            var verified = 0
            let cpuStart = cpuSeconds()
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<benchmarkIterations where verifier.verify(evidence, policy: policy, state: state).isVerified {
                verified += 1
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let cpu = max(cpuSeconds() - cpuStart, 1e-6)
            guard verified == benchmarkIterations else {
                throw AttestationCLIError("benchmark: only \(verified) of \(benchmarkIterations) verifications passed")
            }
            print(
                "verified \(verified) quotes in \(String(format: "%.3f", seconds)) s wall, \(String(format: "%.3f", cpu)) s CPU: "
                    + "\(String(format: "%.0f", Double(verified) / seconds)) quotes/s wall, \(String(format: "%.0f", Double(verified) / cpu)) quotes/s per CPU second")
        }

        /// A Keylime quote answer as domb evidence: the quote string's attest bytes, signature
        /// (ECDSA r‖s as DER for OpenSSL) and PCR blob; the measured-boot log if sent.
        static func keylimeEvidence(_ answer: KeylimeQuote.Answer) throws -> (QuoteFile, QuoteEvidence) {
            let decoded = try KeylimeQuote.decode(answer.quote)
            let bytes: [UInt8]
            switch decoded.signature.value {
            case .ecdsa(let r, let s): bytes = try ECDSASignature.der(r: r, s: s)
            case .rsa(let signature): bytes = signature
            }
            let signature = QuoteSignature(scheme: decoded.signature.scheme, hash: decoded.signature.hash, bytes: bytes)
            let evidence = QuoteEvidence(attest: decoded.attest, signature: signature, pcrValues: decoded.pcrValues, eventLog: answer.measuredBootLog)
            let file = QuoteFile(
                attest: decoded.attest, signature: signature, selection: decoded.selection, pcrValues: decoded.pcrValues, nonce: [],
                akPublicKey: "", akName: nil, eventLog: answer.measuredBootLog)
            return (file, evidence)
        }

        /// The recorded public key of the quote's AK in an enrolment directory. The quote's
        /// `akName` only selects the record; its own `akPublicKey` is never used.
        static func enrolledKey(for quote: QuoteFile, in directory: String) throws -> PublicKey {
            guard let name = quote.akName else {
                throw AttestationCLIError("the quote names no AK (akName), so no enrolled AK can be chosen for it")
            }
            let record = try EnrollmentStore(directory: directory).enrolled(akName: try EnrollmentFormat.name(name, field: "quote akName"))
            return try PublicKey(try record.akPublicArea().key)
        }
    }
}
