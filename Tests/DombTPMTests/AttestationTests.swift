//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTPM
import DombTestSupport
import Foundation
import Testing

/// A host on a real swtpm: an AK, a launch measured into PCRs 12 and 13, and quotes.
final class AttestedHost {
    let swtpm: Swtpm
    let tpm: TPM
    let ak: AttestationKeyInfo
    let key: PublicKey
    let banks: [HashAlgorithm]
    /// The events measured so far, in order (the host's honest log).
    var log: [AttestedEvent] = []

    static let selection = PCRSelection([.init(.sha256, [12, 13])])

    init(algorithm: AttestationKeyAlgorithm = .eccP256, hierarchy: AttestationKeyHierarchy = .endorsement) throws {
        swtpm = try Swtpm()
        tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
        ak = try tpm.createAttestationKey(algorithm: algorithm, hierarchy: hierarchy)
        key = try PublicKey(ak.publicKey)
        banks = try tpm.activeBanks()
    }

    deinit {
        tpm.close()
        swtpm.stop()
    }

    /// Extends `pcr` with the digests of `data` in every active bank and logs it (when `logged`).
    @discardableResult
    func measure(pcr: Int, type: EventType, data: [UInt8], logged: Bool = true) throws -> AttestedEvent {
        let digests = try MultiHasher.digest(data, algorithms: banks)
        try tpm.extend(pcr: pcr, digests: digests)
        let event = AttestedEvent(pcr: pcr, eventType: type, digests: digests, data: data)
        if logged { log.append(event) }
        return event
    }

    /// What a domb launch logs: configuration on PCR 12, two images on PCR 13, a separator on each.
    func launch(kernel: String = "kernel image bytes") throws {
        try measure(pcr: 12, type: .ipl, data: Array("launch configuration".utf8))
        try measure(pcr: 13, type: .eventTag, data: Array(kernel.utf8))
        try measure(pcr: 13, type: .eventTag, data: Array("initrd bytes".utf8))
        try measure(pcr: 12, type: .separator, data: [0, 0, 0, 0])
        try measure(pcr: 13, type: .separator, data: [0, 0, 0, 0])
    }

    /// The golden values a bundle of this launch would carry.
    func golden(kernel: String = "kernel image bytes") throws -> GoldenEventPolicy {
        func event(_ pcr: Int, _ type: EventType, _ data: [UInt8], _ label: String) throws -> GoldenEvent {
            GoldenEvent(pcr: pcr, eventType: type, digests: try MultiHasher.digest(data, algorithms: banks), data: data, label: label)
        }
        return GoldenEventPolicy(events: [
            try event(12, .ipl, Array("launch configuration".utf8), "launch configuration"),
            try event(13, .eventTag, Array(kernel.utf8), "domain dom1 kernel"),
            try event(13, .eventTag, Array("initrd bytes".utf8), "domain dom1 ramdisk"),
            try event(12, .separator, [0, 0, 0, 0], "PCR 12 separator"),
            try event(13, .separator, [0, 0, 0, 0], "PCR 13 separator"),
        ])
    }

    /// `TPM2_Quote`, then the PCR values in the same selection, as `domb quote` gathers them.
    func quote(nonce: [UInt8], selection: PCRSelection = AttestedHost.selection, eventLog: [UInt8]? = [0]) throws -> QuoteEvidence {
        let quote = try tpm.quote(attestationKey: ak.handle, nonce: nonce, selection: selection)
        var values = PCRValues()
        for bank in selection.banks {
            let read = try tpm.readPCRs(bank.pcrs, banks: [bank.algorithm])
            for pcr in bank.pcrs { values[bank.algorithm, pcr] = read[bank.algorithm, pcr] }
        }
        let signature: [UInt8]
        switch quote.signature {
        case .ecdsa(let r, let s): signature = try ECDSASignature.der(r: r, s: s)
        case .rsa(let raw): signature = raw
        }
        return QuoteEvidence(
            attest: quote.attest, signature: QuoteSignature(scheme: quote.scheme, hash: quote.hash, bytes: signature),
            pcrValues: values, eventLog: eventLog)
    }

    var verifier: QuoteVerifier { .openSSL(key: key) }
}

func randomNonce() -> [UInt8] { (0..<20).map { _ in UInt8.random(in: 0...255) } }

/// The event-log hook, fed a fixed event list (the TCG codec plugs in here once merged).
func logPolicy(_ events: [AttestedEvent], golden: GoldenEventPolicy?) -> EventLogPolicy {
    EventLogPolicy(decode: { _ in events }, golden: golden)
}

func codes(_ verdict: QuoteVerdict) -> Set<AttestationFailure.Code> { Set(verdict.failures.map(\.code)) }

@Suite(.serialized) struct AttestationTests {
    @Test func eccQuoteVerifiesWithReplayAndGoldenEvents() throws {
        let host = try AttestedHost()
        try host.launch()
        #expect(host.ak.scheme == .ecdsa && host.ak.hash == .sha256)
        #expect(host.key.typeName == "EC" && host.key.bits == 256)
        let nonce = randomNonce()
        let evidence = try host.quote(nonce: nonce)
        let policy = QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(host.log, golden: try host.golden()))
        let verdict = host.verifier.verify(evidence, policy: policy)
        guard case .verified(let verified) = verdict else {
            Issue.record("expected verified: \(verdict.failures)")
            return
        }
        #expect(verified.attest.extraData == nonce)
        #expect(verified.attest.qualifiedSigner == host.ak.qualifiedName)
        #expect(verified.matchedEvents.count == 5)
        #expect(verified.events == host.log)
        #expect(verified.state.resetCount == verified.attest.clockInfo.resetCount)
    }

    @Test(arguments: [AttestationKeyAlgorithm.rsa(bits: 2048), .rsa(bits: 3072)])
    func rsaQuoteVerifies(algorithm: AttestationKeyAlgorithm) throws {
        let host = try AttestedHost(algorithm: algorithm, hierarchy: .storage)
        try host.launch()
        #expect(host.ak.scheme == .rsassa)
        #expect(host.key.typeName == "RSA")
        #expect(host.key.bits == (algorithm == .rsa(bits: 2048) ? 2048 : 3072))
        let nonce = randomNonce()
        let verdict = host.verifier.verify(try host.quote(nonce: nonce), policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection))
        #expect(verdict.isVerified, "\(verdict.failures)")
    }

    @Test func theAKIsRestrictedPersistentAndItsHandleCannotBeReused() throws {
        let host = try AttestedHost()
        let reread = try host.tpm.readAttestationKey(handle: TPM.defaultAttestationKeyHandle)
        #expect(reread == host.ak)
        #expect(reread.name.count == 34 && reread.name.prefix(2) == [0x00, 0x0B])
        do {
            _ = try host.tpm.createAttestationKey(algorithm: .eccP256, hierarchy: .endorsement)
            Issue.record("expected the handle to be in use")
        } catch {
            #expect(error.description.contains("already in use"))
        }
        #expect(throws: TPMError.self) { try host.tpm.readAttestationKey(handle: 0x8100_0009) }
        #expect(throws: TPMError.self) { try host.tpm.quote(attestationKey: host.ak.handle, nonce: [], selection: AttestedHost.selection) }
        #expect(throws: TPMError.self) {
            try host.tpm.quote(attestationKey: host.ak.handle, nonce: [UInt8](repeating: 1, count: 65), selection: AttestedHost.selection)
        }
    }

    // MARK: - Attacks on the quote

    @Test func wrongNonceIsRefused() throws {
        let host = try AttestedHost()
        let evidence = try host.quote(nonce: randomNonce())
        let verdict = host.verifier.verify(evidence, policy: QuotePolicy(nonce: randomNonce(), selection: AttestedHost.selection))
        #expect(codes(verdict) == [.nonce])
    }

    @Test func wrongAKIsRefused() throws {
        let host = try AttestedHost()
        let other = try AttestedHost()
        let nonce = randomNonce()
        let evidence = try host.quote(nonce: nonce)
        let verdict = other.verifier.verify(evidence, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection))
        #expect(codes(verdict) == [.signature])
        // An RSA key against an ECDSA signature is refused the same way.
        let rsa = try PublicKey(.rsa(modulus: [0xC1] + [UInt8](repeating: 0x37, count: 255), exponent: 0))
        let rsaVerdict = QuoteVerifier.openSSL(key: rsa).verify(evidence, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection))
        #expect(codes(rsaVerdict) == [.signature])
    }

    /// CVE-2022-0317: a genuine quote over PCR 12 only, with a forged PCR 13 value beside it.
    @Test func quoteOverASubsetOfThePCRsIsRefused() throws {
        let host = try AttestedHost()
        try host.launch()
        let nonce = randomNonce()
        var evidence = try host.quote(nonce: nonce, selection: PCRSelection([.init(.sha256, [12])]))
        let policy = QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(host.log, golden: try host.golden()))
        #expect(codes(host.verifier.verify(evidence, policy: policy)).contains(.selection))
        // The attacker adds the value PCR 13 "should" have: still refused, and the value is named.
        evidence.pcrValues[.sha256, 13] = [UInt8](repeating: 0x13, count: 32)
        let verdict = host.verifier.verify(evidence, policy: policy)
        #expect(codes(verdict).isSuperset(of: [.selection, .pcrValues]))
        #expect(verdict.failures.contains { $0.message.contains("does not cover sha256:13") })
        // A quote over more PCRs than the policy checks is refused too.
        let wider = try host.quote(nonce: nonce, selection: PCRSelection([.init(.sha256, [12, 13, 14])]))
        #expect(codes(host.verifier.verify(wider, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection))) == [.selection])
    }

    @Test func replayedOldQuoteIsRefusedByClockAndCounters() throws {
        let host = try AttestedHost()
        let firstNonce = randomNonce()
        let first = try host.quote(nonce: firstNonce)
        usleep(20_000)
        let secondNonce = randomNonce()
        let second = try host.quote(nonce: secondNonce)

        var state = AttestationState()
        guard case .verified(let verified) = host.verifier.verify(second, policy: QuotePolicy(nonce: secondNonce, selection: AttestedHost.selection), state: state) else {
            Issue.record("the fresh quote must verify")
            return
        }
        state.update(with: verified.attest)
        // The old quote, with the nonce it was made for: its clock is behind.
        let replay = host.verifier.verify(first, policy: QuotePolicy(nonce: firstNonce, selection: AttestedHost.selection), state: state)
        #expect(codes(replay) == [.clockWentBack])
        // The same quote twice: the clock did not move.
        let again = host.verifier.verify(second, policy: QuotePolicy(nonce: secondNonce, selection: AttestedHost.selection), state: state)
        #expect(codes(again) == [.clockWentBack])

        // A state from a later boot (higher resetCount): the TPM was reset since; this quote is older.
        let key = verified.attest.qualifiedSigner.hexString
        var later = state
        later.signers[key]?.resetCount += 1
        later.signers[key]?.clock = 0
        let fromOldBoot = host.verifier.verify(second, policy: QuotePolicy(nonce: secondNonce, selection: AttestedHost.selection), state: later)
        #expect(codes(fromOldBoot) == [.resetCountWentBack])
        var restarted = state
        restarted.signers[key]?.restartCount += 1
        restarted.signers[key]?.clock = 0
        let beforeRestart = host.verifier.verify(second, policy: QuotePolicy(nonce: secondNonce, selection: AttestedHost.selection), state: restarted)
        #expect(codes(beforeRestart) == [.restartCountWentBack])
    }

    @Test func tamperedAttestBytesAreRefused() throws {
        let host = try AttestedHost()
        let nonce = randomNonce()
        let evidence = try host.quote(nonce: nonce)
        let policy = QuotePolicy(nonce: nonce, selection: AttestedHost.selection)
        let attest = try TPMSAttest(parsing: evidence.attest)
        // Every single-byte change is refused; the signature names it at least.
        for index in evidence.attest.indices {
            var tampered = evidence
            tampered.attest[index] ^= 0x01
            let verdict = host.verifier.verify(tampered, policy: policy)
            #expect(codes(verdict).contains(.signature), "byte \(index)")
        }
        // A moved clock (to dodge the replay check) also fails the signature.
        var moved = evidence
        let clockOffset = 4 + 2 + 2 + attest.qualifiedSigner.count + 2 + attest.extraData.count
        moved.attest[clockOffset] &+= 1
        #expect(codes(host.verifier.verify(moved, policy: policy)) == [.signature])
        // Bad magic is named as such.
        var magic = evidence
        magic.attest[0] = 0x00
        #expect(codes(host.verifier.verify(magic, policy: policy)) == [.signature, .magic])
        // A truncated attest is malformed.
        var short = evidence
        short.attest.removeLast()
        #expect(codes(host.verifier.verify(short, policy: policy)) == [.signature, .malformedAttest])
    }

    @Test func tamperedPCRValuesAreRefused() throws {
        let host = try AttestedHost()
        try host.launch()
        let nonce = randomNonce()
        var evidence = try host.quote(nonce: nonce)
        evidence.pcrValues[.sha256, 13]?[0] ^= 0xFF
        let verdict = host.verifier.verify(evidence, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection))
        #expect(codes(verdict) == [.pcrDigest])
        // A missing value is named.
        evidence.pcrValues = PCRValues()
        let missing = host.verifier.verify(evidence, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection))
        #expect(codes(missing) == [.pcrValues])
    }

    @Test func goldenPCRValuesMustMatch() throws {
        let host = try AttestedHost()
        try host.launch()
        let nonce = randomNonce()
        let evidence = try host.quote(nonce: nonce)
        var golden = PCRValues()
        golden[.sha256, 12] = evidence.pcrValues[.sha256, 12]
        golden[.sha256, 13] = evidence.pcrValues[.sha256, 13]
        #expect(host.verifier.verify(evidence, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, expectedPCRs: golden)).isVerified)
        // PCR 13 extended by something else after boot.
        try host.measure(pcr: 13, type: .eventTag, data: Array("late module".utf8), logged: false)
        let later = randomNonce()
        let after = try host.quote(nonce: later)
        let verdict = host.verifier.verify(after, policy: QuotePolicy(nonce: later, selection: AttestedHost.selection, expectedPCRs: golden))
        #expect(codes(verdict) == [.goldenPCR])
        // A golden value for a PCR the quote does not cover is refused, not ignored.
        var wider = golden
        wider[.sha256, 14] = [UInt8](repeating: 0, count: 32)
        #expect(codes(host.verifier.verify(evidence, policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, expectedPCRs: wider))).contains(.goldenPCR))
    }

    // MARK: - Attacks on the event log

    @Test func pcr13ExtendedAfterBootFailsTheReplay() throws {
        let host = try AttestedHost()
        try host.launch()
        try host.measure(pcr: 13, type: .eventTag, data: Array("late module".utf8), logged: false)
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(host.log, golden: try host.golden())))
        #expect(codes(verdict) == [.replay])
        #expect(verdict.failures.first?.message.contains("sha256:13") == true)
    }

    /// go-attestation's event-type disclosure: a genuine event retyped to EV_UNUSED and a forged
    /// event appended (and extended) so that the replay still matches.
    @Test func retypedEventWithForgedAppendixIsRefused() throws {
        let host = try AttestedHost()
        try host.launch()
        let forged = try host.measure(pcr: 13, type: .eventTag, data: Array("initrd bytes".utf8), logged: false)
        var log = host.log
        log[2].eventType = .unused
        log.append(forged)
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(log, golden: try host.golden())))
        let found = codes(verdict)
        #expect(!found.contains(.replay), "the replay matches: only the type checks can catch this")
        #expect(found.isSuperset(of: [.unknownEventType, .goldenEvent, .outOfPlaceEvent, .extraEvent]))
        #expect(verdict.failures.contains { $0.message.contains("EV_UNUSED") })

        // Retyped to EV_NO_ACTION instead: no longer extended, so the replay fails as well.
        log[2].eventType = .noAction
        let noAction = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(log, golden: try host.golden())))
        #expect(codes(noAction).isSuperset(of: [.replay, .unknownEventType, .goldenEvent]))
    }

    @Test func truncatedLogIsRefused() throws {
        let host = try AttestedHost()
        try host.launch()
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(Array(host.log.dropLast()), golden: try host.golden())))
        #expect(codes(verdict) == [.replay, .missingEvent])
    }

    /// The host booted another bundle (another kernel): the log is honest and replays, but
    /// its event is not this bundle's.
    @Test func eventFromAnotherBundleIsRefused() throws {
        let host = try AttestedHost()
        try host.launch(kernel: "another bundle's kernel")
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(host.log, golden: try host.golden())))
        #expect(codes(verdict) == [.goldenEvent])
        #expect(verdict.failures.allSatisfy { $0.message.contains("domain dom1 kernel") })
    }

    @Test func pcrWithAValueButNoEventsIsRefused() throws {
        let host = try AttestedHost()
        try host.launch()
        let nonce = randomNonce()
        let onlyPCR12 = host.log.filter { $0.pcr == 12 }
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(onlyPCR12, golden: try host.golden())))
        #expect(codes(verdict) == [.pcrWithoutEvents, .missingEvent])
    }

    @Test func structuralEventChecks() throws {
        let host = try AttestedHost()
        try host.launch()
        // A second separator, extended for real so only the structure is wrong.
        try host.measure(pcr: 13, type: .separator, data: [0, 0, 0, 0])
        // An event on a PCR the quote does not cover.
        var log = host.log
        log.append(AttestedEvent(pcr: 7, eventType: .ipl, digests: host.log[0].digests))
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(log, golden: try host.golden())))
        #expect(codes(verdict) == [.eventOnUnquotedPCR, .duplicateEvent, .extraEvent])
        // No log at all, and a log that does not decode.
        let noLog = host.verifier.verify(
            try host.quote(nonce: nonce, eventLog: nil),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(log, golden: nil)))
        #expect(codes(noLog) == [.eventLogMissing])
        let undecodable = EventLogPolicy(decode: { _ in throw ParseError.truncated("event #3", offset: 99) }, golden: nil)
        let bad = host.verifier.verify(
            try host.quote(nonce: nonce), policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: undecodable))
        #expect(codes(bad) == [.eventLogMalformed])
    }

    /// Without golden values, everything extended on the quoted PCRs is in the verdict,
    /// each event marked with how far it is verified: none drops out.
    @Test func everythingExtendedAppearsInTheVerdict() throws {
        let host = try AttestedHost()
        try host.launch()
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(host.log, golden: nil)))
        guard case .verified(let verified) = verdict else {
            Issue.record("expected verified: \(verdict.failures)")
            return
        }
        let launched = verified.launchedEvents(hashing: OpenSSLHashing())
        #expect(launched.map(\.index) == Array(host.log.indices), "every extended event is listed")
        // The test host logs raw data, not domb records: only their digests are authenticated;
        // the separators' data is what their digests cover.
        #expect(launched.map(\.evidence) == [.digestOnly, .digestOnly, .digestOnly, .content, .content])
        #expect(launched.prefix(3).allSatisfy { $0.line.contains("[UNVERIFIED data: not a domb record]") })
        #expect(launched.last?.line == "PCR 13 separator [content verified by its digest]")
    }

    /// With golden values the whole record is compared: rewritten event data under the
    /// genuine digest (invisible to the replay) is refused.
    @Test func rewrittenEventDataIsNotTheGoldenRecord() throws {
        let host = try AttestedHost()
        try host.launch()
        var log = host.log
        log[1].data = Array("kernel image bytez".utf8)  // same digest, different record
        let nonce = randomNonce()
        let verdict = host.verifier.verify(
            try host.quote(nonce: nonce),
            policy: QuotePolicy(nonce: nonce, selection: AttestedHost.selection, eventLog: logPolicy(log, golden: try host.golden())))
        #expect(codes(verdict) == [.goldenEvent])
        #expect(verdict.failures.first?.message.contains("is not the golden record of domain dom1 kernel") == true, "\(verdict.failures)")
    }

    @Test func emptyPolicyFailsClosed() throws {
        let host = try AttestedHost()
        let nonce = randomNonce()
        let evidence = try host.quote(nonce: nonce)
        let verdict = host.verifier.verify(evidence, policy: QuotePolicy(nonce: [], selection: PCRSelection([])))
        #expect(codes(verdict).isSuperset(of: [.policy, .nonce, .selection]))
    }
}

@Suite struct LockNameTests {
    @Test func oneTPMHasOneLockNameHoweverItIsSpelled() throws {
        func name(_ text: String) throws -> String { try TCTIConfiguration(parsing: text).lockName }
        #expect(try name("device:/dev/tpmrm0") == name("/dev/tpm0"))
        #expect(try name("device:/dev/tpmrm0") == "device-dev-tpm0")
        #expect(try name("device:/dev/tpm1") != name("device:/dev/tpm0"))
        #expect(try name("swtpm:host=localhost,port=2321") == name("swtpm:port=2321,host=127.0.0.1"))
        #expect(try name("swtpm:port=2321,host=127.0.0.1") == "swtpm-host_127.0.0.1-port_2321")
        #expect(try name("swtpm:port=2322") != name("swtpm:port=2321"))
        #expect(try name("swtpm:") == name("swtpm:host=127.0.0.1,port=2321"), "tpm2-tss's defaults")
        #expect(try name("mssim:host=../../etc,port=1").allSatisfy { $0 != "/" })
    }
}
