//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

/// `EventLog.append` keeps what it knows of the earlier events between appends (so a launch
/// of thousands of events is linear): what it builds must be what a reader parses, and it
/// must notice when `events` was changed behind its back.
@Suite struct EventLogAppendTests {
    static let banks: [HashAlgorithm] = [.sha1, .sha256]

    static func event(_ index: Int, pcr: UInt32 = 12, banks: [HashAlgorithm] = banks) -> UnverifiedEvent {
        var digests = DigestSet()
        for bank in banks { digests[bank] = Array(repeating: UInt8(truncatingIfNeeded: index), count: bank.digestSize ?? 0) }
        return UnverifiedEvent(pcr: pcr, type: .ipl, digests: digests, data: Array("domb:string:\(index)\0x".utf8))
    }

    @Test func appendedLogIsWhatTheReaderParses() throws {
        var log = EventLog(banks: Self.banks)
        for index in 0..<300 { try log.append(Self.event(index, pcr: UInt32(12 + index % 2))) }
        let parsed = try EventLog(parsing: log.serialized(), strict: true)
        #expect(parsed.events == log.events, "numbers and offsets as the reader finds them")
        #expect(log.banks == Self.banks)
    }

    @Test func eventsChangedBehindItsBackAreNoticed() throws {
        var log = EventLog(banks: Self.banks)
        for index in 0..<10 { try log.append(Self.event(index)) }
        log.events.removeLast(3)
        try log.append(Self.event(99))
        #expect(log.events.last?.number == 8)
        #expect(try EventLog(parsing: log.serialized(), strict: true).events == log.events)
        // Replaced with a log of other events (same count): renumbered from those.
        var other = EventLog(banks: Self.banks)
        for index in 0..<8 { try other.append(Self.event(index, pcr: 13)) }
        log.events = other.events
        try log.append(Self.event(100))
        #expect(try EventLog(parsing: log.serialized(), strict: true).events == log.events)
    }

    @Test func refusedEventChangesNothing() throws {
        var log = EventLog(banks: Self.banks)
        for index in 0..<5 { try log.append(Self.event(index)) }
        let before = log
        #expect(throws: ParseError.self) { try log.append(Self.event(5, banks: [.sha256])) }
        #expect(throws: ParseError.self) { try log.append(Self.event(6, pcr: 24)) }
        #expect(log == before)
        try log.append(Self.event(7))
        #expect(log.events.count == 6)
        #expect(try EventLog(parsing: log.serialized(), strict: true).events == log.events)
    }
}
