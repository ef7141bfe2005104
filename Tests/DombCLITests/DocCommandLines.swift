//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombTestSupport
import Foundation

/// One `domb …` command line shown in a Markdown page.
///
/// The extraction rule (strict on purpose, so that what is checked is exactly what a reader
/// copies):
/// - only fenced code blocks (between two ```` ``` ```` lines) are read; inline code in prose
///   is not a command line;
/// - a command starts on a line whose text, after its indentation and an optional prompt
///   (`$ `, `# ` or `sudo `), begins with the word `domb`, and at every `$(domb` anywhere in a
///   block's line (that command ends at the matching `)`);
/// - a line ending in `\` continues on the next line, and (without a `$ ` prompt) so does
///   every following line indented deeper than the command's first line (a man-page
///   synopsis wrapped without `\`);
/// - a trailing `# comment` (outside quotes) is not part of the command;
/// - what the page shows the command printing: after a `$ ` prompt, the block's lines up
///   to the next prompt (a terminal transcript); otherwise the comment lines right after
///   the command that start with `#` and three spaces.
///
/// A command written with usage grammar — `[optional]`, `(a | b)`, a spaced ` | `, `a|b`
/// inside a word, `…`, `WORD...` or a placeholder word of ``DocPlaceholders`` — is a
/// *synopsis* and is checked variant by variant against the real argument parser
/// (``DocSynopsis``); every other command is an *example* and is run.
struct DocCommandLine: Sendable, CustomStringConvertible {
    /// Path relative to the repository root, e.g. `docs/boot.md`.
    var file: String
    /// 1-based line number of the command's first line.
    var line: Int
    /// The command with continuations joined and the trailing comment removed.
    var text: String
    /// What the page shows the command printing (see the type's rule; `#   ` removed).
    var shownOutput: [String]

    var description: String { "\(file):\(line): \(text)" }

    /// Whether the command is written with usage grammar (see the type's rule).
    var isSynopsis: Bool { DocSynopsis.hasGrammar(text) }

    /// Every command line of `text` (the Markdown of `file`), in page order.
    static func extract(file: String, text: String) -> [DocCommandLine] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var commands: [DocCommandLine] = []
        var inBlock = false
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("```") {
                inBlock.toggle()
                index += 1
                continue
            }
            guard inBlock else {
                index += 1
                continue
            }
            if let start = commandStart(trimmed) {
                let transcript = trimmed.hasPrefix("$ ")
                let indentation = line.count - trimmed.count
                var joined = String(start)
                var next = index + 1
                // Continuations: `\` at the end, or deeper indentation.
                while next < lines.count {
                    let continued = joined.hasSuffix("\\")
                    let following = lines[next]
                    let followingText = following.drop { $0 == " " || $0 == "\t" }
                    let deeper = !transcript && !followingText.isEmpty && following.count - followingText.count > indentation
                        && !followingText.hasPrefix("```")
                    guard continued || deeper else { break }
                    if continued { joined.removeLast() }
                    joined = joined.trimmingCharacters(in: .whitespaces) + " " + followingText
                    next += 1
                }
                var output: [String] = []
                var after = next
                if transcript {
                    while after < lines.count, !lines[after].hasPrefix("$ "), !lines[after].hasPrefix("```") {
                        output.append(lines[after])
                        after += 1
                    }
                } else {
                    while after < lines.count, lines[after].hasPrefix("#   ") {
                        output.append(String(lines[after].dropFirst(4)))
                        after += 1
                    }
                }
                commands.append(
                    DocCommandLine(file: file, line: index + 1, text: stripComment(joined), shownOutput: output))
                index = next
                continue
            }
            // `$(domb …)` inside another command.
            var rest = Substring(line)
            while let open = rest.range(of: "$(domb ") {
                let inner = rest[rest.index(open.lowerBound, offsetBy: 2)...]
                var depth = 0
                var end = inner.endIndex
                for position in inner.indices {
                    if inner[position] == "(" { depth += 1 }
                    if inner[position] == ")" {
                        if depth == 0 {
                            end = position
                            break
                        }
                        depth -= 1
                    }
                }
                commands.append(
                    DocCommandLine(
                        file: file, line: index + 1, text: String(inner[..<end]).trimmingCharacters(in: .whitespaces),
                        shownOutput: []))
                rest = end < inner.endIndex ? inner[inner.index(after: end)...] : ""
            }
            index += 1
        }
        return commands
    }

    /// The command text if `trimmed` starts a domb command (after an optional prompt).
    private static func commandStart(_ trimmed: Substring) -> Substring? {
        var text = trimmed
        for prompt in ["$ ", "# ", "sudo "] where text.hasPrefix(prompt) {
            text = text.dropFirst(prompt.count)
            break
        }
        guard text == "domb" || text.hasPrefix("domb ") else { return nil }
        return text
    }

    /// `text` without a `#` comment that starts a word outside quotes.
    static func stripComment(_ text: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for position in text.indices {
            let character = text[position]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "#" && (previous == " " || previous == "\t") {
                return text[..<position].trimmingCharacters(in: .whitespaces)
            }
            previous = character
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// The first shown line `printed` does not have, or nil when it has them all, in order.
    /// A line that is only `…` stands for any lines; in a line with `…` the text before it,
    /// without its last (cut) word, must begin a printed line (values such as key
    /// fingerprints differ from run to run); every other line must be a printed line
    /// (trailing blanks aside).
    static func missingShownLine(_ shown: [String], in printed: String) -> String? {
        let actual = printed.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.reversed().drop { $0 == " " }.reversed())
        }
        var cursor = 0
        for line in shown {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "…" { continue }
            let matches: (String) -> Bool
            if let cut = line.range(of: "…") {
                var stable = String(line[..<cut.lowerBound])
                if let space = stable.lastIndex(of: " ") { stable = String(stable[..<space]) }
                let prefix = stable.trimmingCharacters(in: .whitespaces)
                matches = { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }
            } else {
                let wanted = String(line.reversed().drop { $0 == " " }.reversed())
                matches = { $0 == wanted }
            }
            guard let found = actual[cursor...].firstIndex(where: matches) else { return line }
            cursor = found + 1
        }
        return nil
    }

    /// The inline code spans of `text`'s prose (outside fenced blocks) that start with
    /// `domb ` and name an option: commands mentioned in a sentence or a table, often only a
    /// part of one (`domb boot --supervise`). Their command path and option names are
    /// checked, not the whole line.
    static func inlineMentions(file: String, text: String) -> [DocCommandLine] {
        var mentions: [DocCommandLine] = []
        var inBlock = false
        var prose: [(line: Int, text: String)] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.drop(while: { $0 == " " }).hasPrefix("```") {
                inBlock.toggle()
                prose.append((index + 1, ""))
                continue
            }
            prose.append((index + 1, inBlock ? "" : String(line)))
        }
        // A span may continue on the next line of the paragraph: scan the prose as one text.
        var offsets: [Int] = []
        var joined = ""
        for (_, content) in prose {
            offsets.append(joined.count)
            joined += content + "\n"
        }
        let characters = Array(joined)
        var position = 0
        while position < characters.count {
            guard characters[position] == "`" else {
                position += 1
                continue
            }
            var ticks = 0
            while position + ticks < characters.count, characters[position + ticks] == "`" { ticks += 1 }
            let start = position + ticks
            var end = start
            var found = false
            while end + ticks <= characters.count {
                if characters[end..<end + ticks].allSatisfy({ $0 == "`" }) && (end + ticks == characters.count || characters[end + ticks] != "`") {
                    found = true
                    break
                }
                if characters[end] == "\n" && end + 1 < characters.count && characters[end + 1] == "\n" { break }
                end += 1
            }
            guard found else {
                position = start
                continue
            }
            let span = String(characters[start..<end]).replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
            if span.hasPrefix("domb "), span.contains(" -") {
                let line = (offsets.lastIndex { $0 <= start } ?? 0) + 1
                mentions.append(DocCommandLine(file: file, line: line, text: span, shownOutput: []))
            }
            position = end + ticks
        }
        return mentions
    }

    /// Every inline mention of README.md and docs/*.md.
    static func allInlineMentions() throws -> [DocCommandLine] {
        try pages().flatMap { page in
            inlineMentions(file: page, text: try String(contentsOfFile: "\(Repository.root)/\(page)", encoding: .utf8))
        }
    }

    /// Every command line of README.md and docs/*.md.
    static func all() throws -> [DocCommandLine] {
        try pages().flatMap { page in
            extract(file: page, text: try String(contentsOfFile: "\(Repository.root)/\(page)", encoding: .utf8))
        }
    }

    /// README.md, then docs/*.md in name order.
    static func pages() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: "\(Repository.root)/docs")
            .filter { $0.hasSuffix(".md") }.sorted()
        return ["README.md"] + docs.map { "docs/\($0)" }
    }
}

/// A usage synopsis expanded into concrete argument vectors.
///
/// Grammar: `[ … ]` optional, `( … )` a group, ` | ` separates alternatives of the
/// enclosing group (or of the whole line), `a|b` inside a word is a choice of words,
/// `WORD...` or `[…]...` may repeat (taken once), `…` alone stands for "the value shown
/// before" and is looked up in ``DocPlaceholders`` by the option before it (at the end of a
/// line it means "more arguments" and is dropped).
///
/// Coverage: the *minimal* variant (no optional part, every first alternative) and, for
/// k = 0 ..< the largest number of alternatives anywhere, the *full* variant k (every
/// optional part, alternative k mod n of each choice). So every option and every
/// alternative of the synopsis is parsed at least once.
enum DocSynopsis {
    indirect enum Node {
        case word(String)
        case choice([[Node]], optional: Bool)
    }

    static func hasGrammar(_ text: String) -> Bool {
        let words = shellWords(text)
        return words.contains { word in
            !word.hasPrefix("'") && !word.hasPrefix("\"")
                && (word.contains("[") || word.contains("(") || word.contains("|") || word.contains("…")
                    || word.hasSuffix("...") || DocPlaceholders.isPlaceholder(word))
        }
    }

    /// Words split on unquoted blanks; quotes are kept in the words.
    static func shellWords(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        for character in text {
            if let open = quote {
                current.append(character)
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
                current.append(character)
            } else if character == " " || character == "\t" {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Grammar tokens: brackets and a spaced `|` separate, everything else is a word.
    static func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        for var word in shellWords(text) {
            if word.hasPrefix("'") || word.hasPrefix("\"") {
                tokens.append(word)
                continue
            }
            while let first = word.first, first == "[" || first == "(" {
                tokens.append(String(first))
                word.removeFirst()
            }
            var closing: [String] = []
            while true {
                if word.hasSuffix("...") && word.dropLast(3).last.map({ $0 == "]" || $0 == ")" }) == true {
                    word.removeLast(3)
                } else if let last = word.last, last == "]" || last == ")" {
                    closing.insert(String(last), at: 0)
                    word.removeLast()
                } else {
                    break
                }
            }
            if !word.isEmpty { tokens.append(word) }
            tokens += closing
        }
        return tokens
    }

    struct GrammarError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ text: String) throws -> [[Node]] {
        var position = 0
        let tokens = tokens(text)
        let alternatives = try parseAlternatives(tokens, &position, closing: nil)
        guard position == tokens.count else { throw GrammarError(description: "unbalanced brackets in `\(text)`") }
        return alternatives
    }

    private static func parseAlternatives(_ tokens: [String], _ position: inout Int, closing: String?) throws -> [[Node]] {
        var alternatives: [[Node]] = [[]]
        while position < tokens.count {
            let token = tokens[position]
            position += 1
            switch token {
            case "|":
                alternatives.append([])
            case "[", "(":
                let inner = try parseAlternatives(tokens, &position, closing: token == "[" ? "]" : ")")
                alternatives[alternatives.count - 1].append(.choice(inner, optional: token == "["))
            case "]", ")":
                guard token == closing else { throw GrammarError(description: "unexpected `\(token)`") }
                return alternatives
            default:
                alternatives[alternatives.count - 1].append(.word(token))
            }
        }
        guard closing == nil else { throw GrammarError(description: "missing `\(closing ?? "")`") }
        return alternatives
    }

    /// The variants of the coverage rule, as word lists (placeholders not yet replaced).
    static func variants(_ text: String) throws -> [[String]] {
        let root = try parse(text)
        let width = max(1, maxAlternatives(root))
        var result = [expand(root, full: false, k: 0)]
        for k in 0..<width { result.append(expand(root, full: true, k: k)) }
        // Several variants may coincide (a synopsis without choices).
        var seen = Set<[String]>()
        return result.filter { seen.insert($0).inserted }
    }

    private static func maxAlternatives(_ alternatives: [[Node]]) -> Int {
        var widest = alternatives.count
        for nodes in alternatives {
            for node in nodes {
                switch node {
                case .word(let word): widest = max(widest, wordChoices(word).count)
                case .choice(let inner, _): widest = max(widest, maxAlternatives(inner))
                }
            }
        }
        return widest
    }

    private static func expand(_ alternatives: [[Node]], full: Bool, k: Int) -> [String] {
        let chosen = alternatives[full ? k % alternatives.count : 0]
        var words: [String] = []
        for node in chosen {
            switch node {
            case .word(let word):
                let choices = wordChoices(word)
                words.append(choices[full ? k % choices.count : 0])
            case .choice(let inner, let optional):
                if optional && !full { continue }
                words += expand(inner, full: full, k: k)
            }
        }
        return words
    }

    /// `libxl|plan` → both; `FILE...` → `FILE`; `sha1,sha256,...` → `sha1,sha256`.
    private static func wordChoices(_ word: String) -> [String] {
        if word.hasPrefix("'") || word.hasPrefix("\"") { return [word] }
        var trimmed = word
        if trimmed.hasSuffix("...") {
            trimmed.removeLast(3)
            if trimmed.hasSuffix(",") { trimmed.removeLast() }
        }
        let choices = trimmed.split(separator: "|").map(String.init)
        return choices.isEmpty ? [trimmed] : choices
    }
}
