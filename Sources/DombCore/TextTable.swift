//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A table for a terminal: a header row and rows of cells, each column padded to its
/// widest cell, two spaces between columns, no trailing spaces.
///
/// Every cell — header or body — goes through ``TerminalText/escape(_:keepingLineBreaks:)``
/// before it is measured and printed, so a cell can hold untrusted text (event data, domain
/// names, paths, EFI variable names) as it is. Widths are terminal columns of the escaped
/// text (``TerminalText/columns(_:)``): a CJK character takes two, a combining mark none.
///
/// ```
/// PCR  SHA256
///  12  3d45…
/// ```
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public struct Column: Sendable {
        public var header: String
        public var alignment: Alignment
        public init(_ header: String, _ alignment: Alignment = .left) {
            self.header = header
            self.alignment = alignment
        }
    }

    public var columns: [Column]
    /// Cells, raw (escaped when rendered). A short row is padded with empty cells; cells
    /// beyond the last column are dropped.
    public var rows: [[String]]

    public init(_ columns: [Column], rows: [[String]] = []) {
        self.columns = columns
        self.rows = rows
    }

    public mutating func append(_ row: [String]) { rows.append(row) }

    /// The table as lines, each ending in a newline: the header, then the rows.
    public var text: String {
        let escaped = ([columns.map(\.header)] + rows).map { row in
            columns.indices.map { index in index < row.count ? TerminalText.escape(row[index]) : "" }
        }
        let widths = escaped.map { $0.map(TerminalText.columns) }
        let columnWidths = columns.indices.map { column in widths.map { $0[column] }.max() ?? 0 }
        var out = ""
        for (row, cells) in escaped.enumerated() {
            var line = ""
            for (column, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: columnWidths[column] - widths[row][column])
                if column > 0 { line += "  " }
                switch columns[column].alignment {
                case .left: line += cell + (column == columns.count - 1 ? "" : padding)
                case .right: line += padding + cell
                }
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}

extension TerminalText {
    /// The terminal columns `text` takes, as `wcswidth(3)` counts them for text that
    /// ``escape(_:keepingLineBreaks:)`` has made printable: East Asian Wide and Fullwidth
    /// characters (Unicode UAX #11) and emoji take two columns, combining marks, format
    /// characters and variation selectors none, everything else one.
    public static func columns(_ text: some StringProtocol) -> Int {
        text.unicodeScalars.reduce(0) { $0 + columns(of: $1) }
    }

    static func columns(of scalar: Unicode.Scalar) -> Int {
        let value = scalar.value
        if value < 0x300 { return 1 }
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if (0x1160...0x11FF).contains(value) || (0xFE00...0xFE0F).contains(value) || value == 0x200B { return 0 }
        return wideRanges.contains { $0.contains(value) } ? 2 : 1
    }

    /// East Asian Wide / Fullwidth and emoji-presentation ranges (UAX #11, Unicode 15).
    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0...0x23F0, 0x23F3...0x23F3,
        0x25FD...0x25FE, 0x2614...0x2615, 0x2648...0x2653, 0x267F...0x267F, 0x2693...0x2693, 0x26A1...0x26A1,
        0x26AA...0x26AB, 0x26BD...0x26BE, 0x26C4...0x26C5, 0x26CE...0x26CE, 0x26D4...0x26D4, 0x26EA...0x26EA,
        0x26F2...0x26F3, 0x26F5...0x26F5, 0x26FA...0x26FA, 0x26FD...0x26FD, 0x2705...0x2705, 0x270A...0x270B,
        0x2728...0x2728, 0x274C...0x274C, 0x274E...0x274E, 0x2753...0x2755, 0x2757...0x2757, 0x2795...0x2797,
        0x27B0...0x27B0, 0x27BF...0x27BF, 0x2B1B...0x2B1C, 0x2B50...0x2B50, 0x2B55...0x2B55,
        0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
        0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F,
        0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x16FE0...0x16FE4, 0x17000...0x18CFF, 0x1B000...0x1B2FF,
        0x1F004...0x1F004, 0x1F0CF...0x1F0CF, 0x1F18E...0x1F18E, 0x1F191...0x1F19A, 0x1F200...0x1F251,
        0x1F300...0x1F64F, 0x1F680...0x1F6FF, 0x1F7E0...0x1F7EB, 0x1F90C...0x1F9FF, 0x1FA70...0x1FAFF,
        0x20000...0x2FFFD, 0x30000...0x3FFFD,
    ]
}
