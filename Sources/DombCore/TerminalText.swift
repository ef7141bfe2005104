//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Untrusted text made safe to print: what an input file says may reach a terminal only
/// through this, so an escape sequence in a file cannot drive the terminal.
public enum TerminalText {
    /// `text` with every C0 control character but tab, DEL and every C1 control character
    /// written as `\xNN`, and backslashes doubled: one printable line that still tells the
    /// original apart.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0x00...0x08, 0x0A...0x1F, 0x7F...0x9F: out += "\\x" + hexByte(UInt8(scalar.value))
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
