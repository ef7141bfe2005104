//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

@Suite struct TerminalTextTests {
    @Test func controlsBidiAndBackslashesAreMadeVisible() {
        #expect(TerminalText.escape("plain text, é, 日本") == "plain text, é, 日本")
        #expect(TerminalText.escape("\u{1B}[2J\r\n\t\u{07}\u{7F}") == #"\e[2J\r\n\t\x07\x7f"#)
        #expect(TerminalText.escape("a\u{9B}b\u{202E}c\u{2066}d") == #"a\u{9b}b\u{202e}c\u{2066}d"#)
        #expect(TerminalText.escape(#"C:\path"#) == #"C:\\path"#)
        #expect(TerminalText.escape("line one\nline\u{1B} two", keepingLineBreaks: true) == "line one\nline\\e two")
    }

    @Test func bytesThatAreNotUTF8AreShownByte() {
        #expect(TerminalText.escape(bytes: Array("ok".utf8) + [0xFF, 0xC3] + Array("é".utf8)) == #"ok\xff\xc3é"#)
        #expect(TerminalText.escape(bytes: [0xE2, 0x82]) == #"\xe2\x82"#)
        #expect(TerminalText.escape(bytes: [0x1B]) == #"\e"#)
    }

    @Test func enrolmentMessagesQuoteUntrustedTextThroughTerminalText() {
        #expect(EnrollmentFormat.quoted("rsa\u{1B}[2J\u{202E}\"x\"") == #""rsa\e[2J\u{202e}\"x\"""#)
        let long = String(repeating: "é", count: 200)
        #expect(EnrollmentFormat.quoted(long) == "\"" + String(repeating: "é", count: 140) + "…\"")
    }
}
