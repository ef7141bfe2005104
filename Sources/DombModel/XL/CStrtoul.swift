//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// C's `strtoul` (C11 7.22.1.4), which xl_parse.c uses for devids, MTUs, MAC bytes, CPU
/// numbers and vkb sizes: xl's readings of those follow from its quirks (leading blanks
/// and a sign pass, base 0 takes `0x` and a leading `0`, junk after the digits is left for
/// the caller, which often ignores it).
struct CStrtoul {
    /// The value C returns: wrapped for a `-` sign, `UInt64.max` on overflow (ERANGE).
    var value: UInt64
    /// A `-` sign was given (C negates the value, modulo 2^64).
    var negative: Bool
    /// Digits were read (C: `endptr != str`).
    var converted: Bool
    /// The value overflowed (C: `errno == ERANGE`, value ULONG_MAX).
    var overflow: Bool
    /// What follows the number (C: `endptr`), or all of the input when nothing converted.
    var rest: Substring

    init(_ text: Substring, base: Int) {
        var rest = text.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}" }
        var negative = false
        if rest.first == "+" || rest.first == "-" {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        var radix = base
        let lower = rest.prefix(2).lowercased()
        let hexDigitFollows = rest.dropFirst(2).first?.hexDigitValue != nil
        if (base == 0 || base == 16) && lower == "0x" && hexDigitFollows {
            rest = rest.dropFirst(2)
            radix = 16
        } else if base == 0 {
            radix = rest.first == "0" ? 8 : 10
        }
        var value: UInt64 = 0
        var overflow = false
        var digits = 0
        for character in rest {
            guard let digit = character.hexDigitValue, digit < radix, character.isASCII else { break }
            let (times, o1) = value.multipliedReportingOverflow(by: UInt64(radix))
            let (plus, o2) = times.addingReportingOverflow(UInt64(digit))
            overflow = overflow || o1 || o2
            value = plus
            digits += 1
        }
        self.converted = digits > 0
        self.negative = negative
        self.overflow = overflow
        if overflow {
            self.value = UInt64.max
        } else {
            self.value = negative ? (0 &- value) : value
        }
        self.rest = digits > 0 ? rest.dropFirst(digits) : text
    }
}
