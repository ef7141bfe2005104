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
        subcommands: [Verify.self]
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
                Exit status: 0 verified, 1 refused, other values for unusable input.
                """)

        @Argument(help: "The quote file (JSON) from `domb quote`.") var quote: String
        @Option(help: "The attestation key's public key (PEM) that the verifier trusts.") var akPub: String
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

        static let maximumFileSize = QuoteFile.maximumEventLogSize * 2

        func validate() throws {
            let trustSources = [trust, cert, pubkey].compactMap { $0 }.count
            if bundle != nil, trustSources != 1 {
                throw ValidationError("--bundle needs exactly one of --trust DIR, --cert FILE, --pubkey FILE")
            }
            if bundle == nil, trustSources > 0 { throw ValidationError("--trust, --cert and --pubkey go with --bundle") }
            _ = try AttestationIO.parseNonce(nonce)
            _ = try pcrs.map(PCRSelection.init(parsing:))
        }

        /// Exit status for input that cannot be used at all (1 means "refused").
        static let unusableInput: Int32 = 2

        func run() async throws {
            let inputs: (QuoteEvidence, PublicKey, PCRValues?, PCRSelection, AttestationState?)
            do {
                inputs = try loadInputs()
            } catch {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode(Self.unusableInput)
            }
            let (evidence, key, givenExpected, givenSelection, stored) = inputs
            var expected = givenExpected
            var selection = givenSelection
            var golden: [GoldenEvent]?
            if let bundle {
                do {
                    let launch = try Self.golden(bundle: bundle, trust: try bundleTrust())
                    golden = launch.events
                    if expected == nil {
                        // The bundle's predicted values for exactly the PCRs quoted.
                        var values = PCRValues()
                        for (bank, pcr) in selection.pairs { values[bank, pcr] = launch.pcrs[bank, pcr] }
                        expected = values
                    }
                    if pcrs == nil, givenExpected == nil {
                        selection = try PCRSelection(parsing: "sha256:" + launch.pcrs.pcrs(in: .sha256).map(String.init).joined(separator: ","))
                    }
                } catch {
                    FileHandle.standardError.write(Data("Error: \(bundle): \(error)\n".utf8))
                    throw ExitCode(Self.unusableInput)
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
                try AtomicFile.write(try updated.jsonBytes(), to: state, inputs: [quote, akPub])
            }
            if json {
                print(try Self.json(verdict, selection: selection, note: logNote, hashing: verifier.hashing))
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
            if !verdict.isVerified { throw ExitCode(1) }
        }

        private func bundleTrust() throws -> BundleTrustPolicy {
            try bundleTrustPolicy(trust: trust, cert: cert, pubkey: pubkey)
        }

        /// The golden events (every extended event of the bundle's predicted log) and PCR
        /// values of a verified bundle.
        static func golden(bundle: String, trust: BundleTrustPolicy) throws -> (events: [GoldenEvent], pcrs: PCRValues) {
            let loaded = try LoadedBundle.load(path: bundle, trust: trust, minimumGeneration: 0)
            guard let predicted = loaded.metadata[BundleLayout.predictedEventLog] else {
                throw ValidationError("the bundle carries no predicted event log")
            }
            let log = try EventLog(parsing: predicted, strict: true)
            let events = log.events.filter(\.isExtended).map { event in
                GoldenEvent(
                    pcr: Int(event.pcr), eventType: event.type, digests: event.digests, data: event.data,
                    label: (try? DombEvent(event)).map { Self.describe($0) } ?? "\(event.type) on PCR \(event.pcr)")
            }
            return (events, loaded.manifest.predictedPCRs)
        }

        private func loadInputs() throws -> (QuoteEvidence, PublicKey, PCRValues?, PCRSelection, AttestationState?) {
            let quoteBytes = try AttestationIO.readFile(quote, limit: Self.maximumFileSize, what: "quote file")
            let quoteFile = try ContextError.wrap(quote) { try QuoteFile(json: quoteBytes) }
            let evidence = try ContextError.wrap(quote) { try quoteFile.evidence() }
            let keyBytes = try AttestationIO.readFile(akPub, limit: PublicKey.maximumPEMSize, what: "AK public key")
            let key = try ContextError.wrap(akPub) { try PublicKey(pem: keyBytes) }
            let expected = try expectedPcrs.map { path in
                let bytes = try AttestationIO.readFile(path, limit: 1 << 20, what: "expected PCRs")
                return try ContextError.wrap(path) { try Self.expectedPCRValues(bytes) }
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
                try OutputTarget.check(state, inputs: OutputTarget.identities([quote, akPub]))
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

        /// Reads `{"sha256": {"12": "<hex>"}}`.
        static func expectedPCRValues(_ bytes: [UInt8]) throws -> PCRValues {
            let decoded: [String: [String: String]]
            do {
                decoded = try JSONDecoder().decode([String: [String: String]].self, from: Data(bytes))
            } catch {
                throw AttestationCLIError("expected PCRs: not JSON of the form {\"sha256\": {\"12\": \"<hex>\"}}: \(error)")
            }
            var values = PCRValues()
            for (bankName, entries) in decoded {
                guard let bank = HashAlgorithm(name: bankName), let size = bank.digestSize else {
                    throw AttestationCLIError("expected PCRs: unknown bank \"\(bankName)\"")
                }
                for (pcrText, hex) in entries {
                    guard let pcr = Int(pcrText), (0..<PCRValues.pcrCount).contains(pcr) else {
                        throw AttestationCLIError("expected PCRs: \"\(pcrText)\" is not a PCR index 0–\(PCRValues.pcrCount - 1)")
                    }
                    guard let digest = [UInt8](hex: hex), digest.count == size else {
                        throw AttestationCLIError("expected PCRs: \(bankName):\(pcr) is not a \(size)-byte digest in hex")
                    }
                    values[bank, pcr] = digest
                }
            }
            guard !values.algorithms.isEmpty else { throw AttestationCLIError("expected PCRs: the file lists no PCR") }
            return values
        }

        /// One line per domb record: "dom1 kernel vmlinuz (1234 bytes) sha256:…".
        static func describe(_ record: DombEvent) -> String {
            switch record {
            case .module(let module):
                let digest = module.digests[.sha256].map { " sha256:\($0.hexString)" } ?? ""
                return "\(module.domain.isEmpty ? "-" : module.domain) \(module.role) \(module.label) (\(module.size) bytes)\(digest)"
            case .configuration(let configuration):
                return "\(configuration.kind) \(configuration.subject) (\(configuration.content.count) bytes inline)"
            case .separator:
                return "separator"
            }
        }

        static func json(_ verdict: QuoteVerdict, selection: PCRSelection, note: String, hashing: any AttestationHashing) throws -> String {
            var object: [String: Any] = ["verified": verdict.isVerified, "selection": selection.description]
            switch verdict {
            case .verified(let verified):
                let clock = verified.attest.clockInfo
                object["quote"] = [
                    "qualifiedSigner": verified.attest.qualifiedSigner.hexString,
                    "nonce": verified.attest.extraData.hexString,
                    "clock": clock.clock, "resetCount": clock.resetCount, "restartCount": clock.restartCount,
                    "safe": clock.safe, "firmwareVersion": String(verified.attest.firmwareVersion, radix: 16),
                ] as [String: Any]
                object["pcrs"] = verified.selection.pairs.map { bank, pcr in
                    ["bank": bank.name, "pcr": pcr, "digest": (verified.pcrValues[bank, pcr] ?? []).hexString] as [String: Any]
                }
                let launched = verified.launchedEvents(hashing: hashing)
                object["launched"] = launched.map(\.line)
                object["events"] = launched.map { event in
                    [
                        "index": event.index, "pcr": event.pcr, "type": event.eventType.description,
                        "digests": Dictionary(uniqueKeysWithValues: event.digests.digests.map { ($0.algorithm.name, $0.bytes.hexString) }),
                        "verified": event.evidence.rawValue,
                    ] as [String: Any]
                }
                object["reasons"] = [[String: String]]()
            case .failed(let failures):
                object["reasons"] = failures.map { ["code": $0.code.rawValue, "message": $0.message] }
            }
            object["eventLog"] = note
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
    }
}
