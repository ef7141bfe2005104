//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// The one reader of JSON documents a user hands domb (launch descriptions, PCR policies,
/// quotes, enrolment and state files, Xenstore plans): what goes wrong is said in words —
/// where in the document and what was expected — never as Foundation's `DecodingError` or
/// `NSCocoaErrorDomain` dump.
public enum JSONInput {
    /// Decodes `T` from `bytes`.
    ///
    /// - Parameter what: what the document should be, for the message ("not a LaunchSpec
    ///   JSON document").
    /// - Throws: `ParseError` (`invalidValue`): `"\(what): \(description)"`.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws(ParseError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw ParseError(.invalidValue, "\(what): \(describe(error, in: bytes))")
        }
    }

    /// An error of `JSONDecoder` in words: the place in the document (`.domains[0].name`)
    /// and what was wrong there; for text that is not JSON at all (given the `document`),
    /// where it stops being JSON.
    public static func describe(_ error: any Error, in document: [UInt8]? = nil) -> String {
        guard let decoding = error as? DecodingError else {
            // A Decodable's own init threw (a typed domb error): its description is already words.
            return "\(error)"
        }
        func place(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        func at(_ path: [any CodingKey]) -> String { path.isEmpty ? "" : place(path) + ": " }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "\(at(context.codingPath))missing key \"\(key.stringValue)\""
        case .valueNotFound(_, let context), .typeMismatch(_, let context):
            // Foundation's words: "Expected to decode Int but found a string instead."
            return "\(at(context.codingPath))\(context.debugDescription)"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                // Not JSON. JSONDecoder does not say where; JSONSerialization's parser does
                // ("Invalid value around character 8.").
                return "not valid JSON" + (document.flatMap(syntaxError).map { ": \($0)" } ?? "")
            }
            return "\(at(context.codingPath))\(context.debugDescription)"
        @unknown default:
            return "\(decoding.localizedDescription)"
        }
    }

    /// Where JSONSerialization stops reading `document`, lowercased to go after a colon.
    private static func syntaxError(_ document: [UInt8]) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(document), options: [.fragmentsAllowed])
            return nil
        } catch {
            guard var text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String, let first = text.first else { return nil }
            text = first.lowercased() + text.dropFirst()
            return text.hasSuffix(".") ? String(text.dropLast()) : text
        }
    }
}

/// The one writer of the JSON documents domb hands people and tools (quote, enrolment and
/// state files, `--json` reports): pretty, keys sorted, slashes unescaped. (What is signed
/// or hashed is written by ``JSONValue/canonicalBytes`` instead.)
public enum JSONOutput {
    /// The document as text, without a final newline.
    public static func text(_ value: some Encodable) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }

    /// The document as a file's bytes: the text and a newline.
    public static func fileBytes(_ value: some Encodable) throws -> [UInt8] {
        Array(try encode(value)) + [0x0A]
    }

    private static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}
