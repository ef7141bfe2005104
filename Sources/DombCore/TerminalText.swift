//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The one function through which untrusted text reaches a person: event data, labels,
/// domain names read from logs, tar member names, certificate subjects, remote log text.
///
/// A log or bundle is attacker-controlled; printed raw, an `ESC [ 2 J` in a module label
/// would clear the verifier's screen, and a carriage return or a bidi override could make
/// "REFUSED" read as "VERIFIED". Everything that is not printable is shown as an escape:
/// C0 controls, DEL and C1 controls as `\n`, `\t`, `\r`, `\e`, `\xNN` or `\u{NNNN}`; the
/// Unicode bidi controls (U+061C, U+200E/F, U+202A–202E, U+2066–2069) and line/paragraph
/// separators as `\u{NNNN}`; bytes that are not UTF-8 as `\xNN`; the backslash itself as
/// `\\`, so every escape is unambiguous.
public enum TerminalText {
    /// - Parameter keepingLineBreaks: leave `\n` and `\t` as they are (for a whole
    ///   multi-line message whose untrusted parts are not known; everything else is escaped).
    public static func escape(_ text: some StringProtocol, keepingLineBreaks: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if keepingLineBreaks, scalar == "\n" || scalar == "\t" {
                out.unicodeScalars.append(scalar)
            } else {
                append(scalar, to: &out)
            }
        }
        return out
    }

    /// `bytes` read as UTF-8, escaped; a byte that does not start a valid sequence becomes `\xNN`.
    public static func escape(bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        var out = ""
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
            if length > 0, length <= bytes.count - index,
                let text = String(validating: bytes[index..<(index + length)], as: UTF8.self)
            {
                for scalar in text.unicodeScalars { append(scalar, to: &out) }
                index += length
            } else {
                out += hex(lead)
                index += 1
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        switch scalar.value {
        case 0x5C: out += "\\\\"
        case 0x0A: out += "\\n"
        case 0x09: out += "\\t"
        case 0x0D: out += "\\r"
        case 0x1B: out += "\\e"
        case 0x00..<0x20, 0x7F: out += hex(UInt8(scalar.value))
        case 0x80..<0xA0, 0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
            out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
}
