//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import Foundation
import Testing

/// Every resource cap of the pure-Swift parsers, tested at the cap (accepted, or refused for
/// another reason when the cap cannot be reached by a valid input) and one past it (refused
/// with ``ParseError/Code-swift.struct/limitExceeded`` or the parser's documented code and a
/// message naming the cap). Inputs that ask for a huge allocation must be refused before
/// anything is allocated.
@Suite struct ResourceCapTests {
    static func isLimit(_ error: any Error, _ text: String) -> Bool {
        (error as? ParseError)?.code == .limitExceeded && "\(error)".contains(text)
    }

    // The xl.cfg caps are those of the libxlutil wrapper: DombXLConfigTests/XLUtilCapTests.

    // MARK: Event log

    /// A crypto-agile SHA-256 log with `events` EV_IPL records of `dataSize` bytes.
    static func log(events: Int, dataSize: Int = 4) throws -> [UInt8] {
        var log = EventLog(banks: [.sha256])
        for index in 0..<events {
            var digests = DigestSet()
            digests[.sha256] = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 32)
            try log.append(
                UnverifiedEvent(pcr: 12, type: .ipl, digests: digests, data: [UInt8](repeating: 0x41, count: dataSize)),
                limits: .init(maximumLogSize: .max, maximumEventCount: .max, maximumEventDataSize: .max))
        }
        return log.serialized()
    }

    @Test func eventLogDefaultCaps() {
        #expect(EventLog.Limits.default.maximumLogSize == 128 << 20)
        #expect(EventLog.Limits.default.maximumEventCount == 2_000_000)
        #expect(EventLog.Limits.default.maximumEventDataSize == 1 << 20)
    }

    @Test func eventLogSizeCap() throws {
        let bytes = try Self.log(events: 3)
        let atCap = EventLog.Limits(maximumLogSize: bytes.count, maximumEventCount: 10, maximumEventDataSize: 64)
        #expect(try EventLog(parsing: bytes, limits: atCap).events.count == 3)
        var past = atCap
        past.maximumLogSize = bytes.count - 1
        #expect { try EventLog(parsing: bytes, limits: past) } throws: { Self.isLimit($0, "\(bytes.count - 1)-byte limit") }
    }

    @Test func eventCountCap() throws {
        let bytes = try Self.log(events: 5)
        let atCap = EventLog.Limits(maximumLogSize: 1 << 20, maximumEventCount: 5, maximumEventDataSize: 64)
        #expect(try EventLog(parsing: bytes, limits: atCap).events.count == 5)
        var past = atCap
        past.maximumEventCount = 4
        #expect { try EventLog(parsing: bytes, limits: past) } throws: { Self.isLimit($0, "more than 4 event records") }
    }

    /// The SHA-1 format counts every record as an event: the cap is the same number of events.
    @Test func eventCountCapInTheSHA1Format() throws {
        var bytes: [UInt8] = []
        for index in 0..<5 {
            var digests = DigestSet()
            digests[.sha1] = [UInt8](repeating: UInt8(index), count: 20)
            bytes += EventLog.sha1Record(UnverifiedEvent(pcr: 12, type: .ipl, digests: digests, data: [1, 2, 3]))
        }
        let atCap = EventLog.Limits(maximumLogSize: 1 << 20, maximumEventCount: 5, maximumEventDataSize: 64)
        let log = try EventLog(parsing: bytes, limits: atCap)
        #expect(log.format == .sha1 && log.events.count == 5)
        var past = atCap
        past.maximumEventCount = 4
        #expect { try EventLog(parsing: bytes, limits: past) } throws: { Self.isLimit($0, "more than 4 event records") }
    }

    @Test func eventDataSizeCap() throws {
        let bytes = try Self.log(events: 1, dataSize: 100)
        let atCap = EventLog.Limits(maximumLogSize: 1 << 20, maximumEventCount: 10, maximumEventDataSize: 100)
        #expect(try EventLog(parsing: bytes, limits: atCap).events.first?.data.count == 100)
        var past = atCap
        past.maximumEventDataSize = 99
        #expect { try EventLog(parsing: bytes, limits: past) } throws: { error in
            Self.isLimit(error, "more than the 99-byte limit") && (error as? ParseError)?.offset != nil
        }
    }

    /// An eventSize of 4 GiB in a 100-byte log is refused by the cap, not by an allocation.
    @Test func hugeEventSizeIsRefusedBeforeAllocating() throws {
        var bytes = try Self.log(events: 1)
        let sizeOffset = bytes.count - 4 - 4
        bytes.replaceSubrange(sizeOffset..<(sizeOffset + 4), with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect { try EventLog(parsing: bytes) } throws: { error in
            Self.isLimit(error, "4294967295 bytes") && (error as? ParseError)?.offset == sizeOffset
        }
    }

    /// The Spec ID header may list at most 16 banks. No valid header reaches 16 (there are
    /// fewer known hash algorithms), so at the cap the refusal is for another reason.
    @Test func specIDAlgorithmCountCap() throws {
        func header(count: UInt32) -> [UInt8] {
            var w = ByteWriter()
            w.writeBytes(SpecIDEvent.signature)
            w.writeLE(UInt32(0))  // platformClass
            w.writeBytes([0, 2, 0, 2])  // minor, major, errata, uintnSize
            w.writeLE(count)  // numberOfAlgorithms
            for _ in 0..<count {
                w.writeLE(UInt16(0x000B))  // sha256 ...
                w.writeLE(UInt16(32))  // ... repeated: invalid past the first
            }
            w.writeLE(UInt8(0))  // vendorInfoSize
            return w.bytes
        }
        #expect {
            var r = ByteReader(header(count: UInt32(SpecIDEvent.maximumAlgorithms)))
            _ = try SpecIDEvent(parsing: &r)
        } throws: { ($0 as? ParseError)?.code == .invalidValue && "\($0)".contains("twice") }
        #expect {
            var r = ByteReader(header(count: UInt32(SpecIDEvent.maximumAlgorithms + 1)))
            _ = try SpecIDEvent(parsing: &r)
        } throws: { Self.isLimit($0, "more than \(SpecIDEvent.maximumAlgorithms)") }
    }

    @Test func moduleRecordStringCap() throws {
        let name = String(repeating: "d", count: ModuleRecord.maximumStringLength)
        var digests = DigestSet()
        digests[.sha256] = [UInt8](repeating: 7, count: 32)
        let record = ModuleRecord(domain: name, role: "kernel", size: 1, label: "k", digests: digests)
        let bytes = try record.serialized()
        #expect(try ModuleRecord(parsing: bytes) == record)
        var past = record
        past.domain += "d"
        #expect { try past.serialized() } throws: { Self.isLimit($0, "longer than 255 bytes") }
    }

    // MARK: TPMS_ATTEST

    /// A non-quote TPMS_ATTEST padded with `TPMU_ATTEST` bytes to `size`.
    static func attest(size: Int) -> [UInt8] {
        var w = ByteWriter()
        w.writeBE(TPMSAttest.generatedValue)
        w.writeBE(UInt16(0x8017))  // TPM_ST_ATTEST_CERTIFY
        w.writeBE(UInt16(0))  // qualifiedSigner
        w.writeBE(UInt16(0))  // extraData
        w.writeZeros(8 + 4 + 4)  // clock, resetCount, restartCount
        w.writeBE(UInt8(1))  // safe
        w.writeZeros(8)  // firmwareVersion
        w.writeZeros(size - w.bytes.count)
        return w.bytes
    }

    @Test func attestSizeCap() throws {
        #expect(try TPMSAttest(parsing: Self.attest(size: TPMSAttest.maximumSize)).bytes.count == TPMSAttest.maximumSize)
        #expect { try TPMSAttest(parsing: Self.attest(size: TPMSAttest.maximumSize + 1)) } throws: {
            Self.isLimit($0, "more than the \(TPMSAttest.maximumSize)")
        }
    }

    /// A quote with the given field sizes (TPM 2.0 Part 2 §10.12.8).
    static func quote(signer: Int = 34, extraData: Int = 20, banks: Int = 1, selectSize: Int = 3, digest: Int = 32)
        -> [UInt8]
    {
        var w = ByteWriter()
        w.writeBE(TPMSAttest.generatedValue)
        w.writeBE(TPMSAttest.quoteType)
        w.writeBE(UInt16(signer))
        w.writeZeros(signer)
        w.writeBE(UInt16(extraData))
        w.writeZeros(extraData)
        w.writeZeros(8 + 4 + 4)
        w.writeBE(UInt8(0))
        w.writeZeros(8)
        w.writeBE(UInt32(banks))
        for bank in 0..<banks {
            w.writeBE(UInt16(0x000B + bank))
            w.writeBE(UInt8(selectSize))
            w.writeZeros(selectSize)
        }
        w.writeBE(UInt16(digest))
        w.writeZeros(digest)
        return w.bytes
    }

    @Test func attestFieldCaps() throws {
        func refused(_ bytes: [UInt8], _ text: String) -> Bool {
            do {
                _ = try TPMSAttest(parsing: bytes)
                return false
            } catch { return error.code == .invalidValue && "\(error)".contains(text) }
        }
        let atCaps = try TPMSAttest(parsing: Self.quote(
            signer: TPMSAttest.maximumNameSize, extraData: TPMSAttest.maximumDataSize, banks: TPMSAttest.maximumBanks,
            selectSize: TPMSAttest.maximumSelectSize, digest: TPMSAttest.maximumDataSize))
        #expect(atCaps.quote?.pcrSelection.banks.count == TPMSAttest.maximumBanks)
        #expect(refused(Self.quote(signer: TPMSAttest.maximumNameSize + 1), "more than the 66 allowed"))
        #expect(refused(Self.quote(extraData: TPMSAttest.maximumDataSize + 1), "more than the 64 allowed"))
        #expect(refused(Self.quote(digest: TPMSAttest.maximumDataSize + 1), "more than the 64 allowed"))
        #expect(refused(Self.quote(banks: TPMSAttest.maximumBanks + 1), "more than 16"))
        #expect(refused(Self.quote(selectSize: TPMSAttest.maximumSelectSize + 1), "more than 4"))
    }

    // MARK: Quote files

    static func quoteFile(signature: Int = 8, pcrs: Int = 1, eventLog: Int? = nil, padding: Int = 0) -> [UInt8] {
        let entries = (0..<pcrs).map { index in
            "{\"bank\":\"\(index < 24 ? "sha256" : "sha1")\",\"pcr\":\(index % 24),\"digest\":\"\(String(repeating: "00", count: index < 24 ? 32 : 20))\"}"
        }
        var json = "{\"format\":\"domb-quote/1\",\"attest\":\"\(Data(Self.quote()).base64EncodedString())\","
        json += "\"signature\":{\"scheme\":\"ecdsa\",\"hash\":\"sha256\",\"encoding\":\"der\","
        json += "\"value\":\"\(Data(repeating: 1, count: signature).base64EncodedString())\"},"
        json += "\"selection\":\"sha256:0\",\"pcrs\":[\(entries.joined(separator: ","))],\"nonce\":\"00\","
        json += "\"akPublicKey\":\"k\""
        if let eventLog { json += ",\"eventLog\":\"\(Data(repeating: 2, count: eventLog).base64EncodedString())\"" }
        json += "}"
        return Array(json.utf8) + [UInt8](repeating: 0x20, count: padding)
    }

    @Test func quoteFileSignatureCap() throws {
        let atCap = try QuoteFile(json: Self.quoteFile(signature: QuoteFile.maximumSignatureSize)).evidence()
        #expect(atCap.signature.bytes.count == QuoteFile.maximumSignatureSize)
        #expect { try QuoteFile(json: Self.quoteFile(signature: QuoteFile.maximumSignatureSize + 1)).evidence() } throws: {
            Self.isLimit($0, "signature.value is longer than \(QuoteFile.maximumSignatureSize)")
        }
    }

    @Test func quoteFilePCRValueCap() throws {
        // 24 sha256 values, then sha1 values: 48 distinct ones; the cap (16 banks x 24) is
        // reached only with duplicates, which are refused for that reason instead.
        #expect(try QuoteFile(json: Self.quoteFile(pcrs: 48)).evidence().pcrValues[.sha1, 23] != nil)
        #expect { try QuoteFile(json: Self.quoteFile(pcrs: QuoteFile.maximumPCRValues)).evidence() } throws: {
            ($0 as? ParseError)?.code == .invalidValue && "\($0)".contains("listed twice")
        }
        #expect { try QuoteFile(json: Self.quoteFile(pcrs: QuoteFile.maximumPCRValues + 1)).evidence() } throws: {
            Self.isLimit($0, "more than \(QuoteFile.maximumPCRValues)")
        }
    }

    @Test func quoteFileEventLogCap() throws {
        let atCap = try QuoteFile(json: Self.quoteFile(eventLog: QuoteFile.maximumEventLogSize)).evidence()
        #expect(atCap.eventLog?.count == QuoteFile.maximumEventLogSize)
        #expect { try QuoteFile(json: Self.quoteFile(eventLog: QuoteFile.maximumEventLogSize + 1)).evidence() } throws: {
            Self.isLimit($0, "eventLog is longer than \(QuoteFile.maximumEventLogSize)")
        }
    }

    @Test func quoteFileSizeCap() throws {
        let small = Self.quoteFile()
        let atCap = Self.quoteFile(padding: QuoteFile.maximumFileSize - small.count)
        #expect(atCap.count == QuoteFile.maximumFileSize)
        #expect(try QuoteFile(json: atCap).format == QuoteFile.formatName)
        #expect { try QuoteFile(json: atCap + [0x20]) } throws: {
            Self.isLimit($0, "more than the \(QuoteFile.maximumFileSize)-byte limit")
        }
    }

    /// Deeply nested JSON is refused with an error, not a stack overflow.
    @Test func quoteFileNestingIsRefused() {
        let deep = Array(("{\"format\":" + String(repeating: "[", count: 100_000)).utf8)
        #expect { try QuoteFile(json: deep) } throws: { ($0 as? ParseError)?.code == .invalidValue }
    }

    // MARK: Launch description counts (LaunchLimits, enforced by validation)

    static func limitProblems(_ spec: LaunchSpec) -> [LaunchProblem] {
        spec.validate().filter { $0.rule == .tooMany }
    }

    static func domain(_ index: Int, modules: Int = 1, devices: Int = 0) -> DomainSpec {
        DomainSpec(
            name: "d\(index)", domid: UInt32(index + 1), type: .pvh, memoryKiB: 256 << 10,
            modules: (0..<modules).map { ModuleSpec(kind: $0 == 0 ? .kernel : .config, path: "/boot/m\($0)") },
            devices: (0..<devices).map { DeviceSpec(VifSettings(), devid: UInt32($0)) })
    }

    @Test func launchDomainCountCap() {
        let atCap = LaunchSpec(domains: (0..<LaunchLimits.maxDomains).map { Self.domain($0) })
        #expect(Self.limitProblems(atCap).isEmpty)
        let past = LaunchSpec(domains: (0...LaunchLimits.maxDomains).map { Self.domain($0) })
        #expect(Self.limitProblems(past).map(\.message) == [
            "has \(LaunchLimits.maxDomains + 1) domains; at most \(LaunchLimits.maxDomains) are allowed"
        ])
    }

    @Test func launchModuleAndDeviceCaps() {
        let atCap = LaunchSpec(domains: [
            Self.domain(0, modules: LaunchLimits.maxModulesPerDomain, devices: LaunchLimits.maxDevicesPerDomain)
        ])
        #expect(Self.limitProblems(atCap).isEmpty)
        let past = LaunchSpec(domains: [
            Self.domain(0, modules: LaunchLimits.maxModulesPerDomain + 1, devices: LaunchLimits.maxDevicesPerDomain + 1)
        ])
        let messages = Self.limitProblems(past).map(\.message)
        #expect(messages.contains("has \(LaunchLimits.maxModulesPerDomain + 1) modules; at most \(LaunchLimits.maxModulesPerDomain)"))
        #expect(messages.contains("has \(LaunchLimits.maxDevicesPerDomain + 1) devices; at most \(LaunchLimits.maxDevicesPerDomain)"))
    }

    // MARK: PCR values text

    @Test func pcrValuesTextLineCap() throws {
        func text(_ lines: Int) -> String {
            (["sha256:", "  12: 0x" + String(repeating: "ab", count: 32)]
                + [String](repeating: "# comment", count: lines - 2)).joined(separator: "\n")
        }
        #expect(try PCRValues(parsingText: text(PCRValues.maximumTextLines))[.sha256, 12]?.count == 32)
        #expect { try PCRValues(parsingText: text(PCRValues.maximumTextLines + 1)) } throws: {
            Self.isLimit($0, "more than \(PCRValues.maximumTextLines) lines")
        }
    }

    // MARK: Bundle documents (canonical JSON, manifest)

    @Test func jsonDepthCap() throws {
        func nested(_ depth: Int) -> [UInt8] {
            Array((String(repeating: "[", count: depth) + "0" + String(repeating: "]", count: depth)).utf8)
        }
        var value = try JSONValue(parsing: nested(JSONValue.maximumDepth))
        var depth = 0
        while case .array(let items) = value, let first = items.first {
            value = first
            depth += 1
        }
        #expect(depth == JSONValue.maximumDepth && value == .integer(0))
        #expect { try JSONValue(parsing: nested(JSONValue.maximumDepth + 1)) } throws: {
            Self.isLimit($0, "nests deeper than \(JSONValue.maximumDepth)")
        }
        // A million brackets are refused at the cap, not by a stack overflow.
        #expect { try JSONValue(parsing: Array(String(repeating: "[", count: 1_000_000).utf8)) } throws: {
            Self.isLimit($0, "nests deeper")
        }
    }

    @Test func jsonSizeCap() throws {
        let string = Array("\"".utf8)
        let atCap = string + [UInt8](repeating: UInt8(ascii: "a"), count: JSONValue.maximumSize - 2) + string
        #expect(try JSONValue(parsing: atCap).stringValue?.utf8.count == JSONValue.maximumSize - 2)
        #expect { try JSONValue(parsing: atCap + [0x20]) } throws: {
            Self.isLimit($0, "more than the \(JSONValue.maximumSize) allowed")
        }
    }

    /// A manifest at the size cap is read (and refused for what it says); one byte more is
    /// refused before it is parsed.
    @Test func manifestSizeCap() throws {
        let atCap = Array("\"".utf8) + [UInt8](repeating: UInt8(ascii: "m"), count: BundleLayout.maximumManifestSize - 2)
            + Array("\"".utf8)
        #expect { try BundleManifest(canonicalBytes: atCap) } throws: {
            ($0 as? ParseError)?.code == .invalidValue && "\($0)".contains("manifest must be an object")
        }
        #expect { try BundleManifest(canonicalBytes: atCap + [0x20]) } throws: {
            Self.isLimit($0, "more than \(BundleLayout.maximumManifestSize)")
        }
    }
}
