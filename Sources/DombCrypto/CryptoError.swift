//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL

/// A failure inside OpenSSL, or a request OpenSSL cannot serve, with OpenSSL's error queue text.
public struct CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var message: String

    public init(_ operation: String, _ message: String) {
        self.operation = operation
        self.message = message
    }

    /// Drains OpenSSL's thread-local error queue into one message.
    static func openSSL(_ operation: String) -> CryptoError {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return CryptoError(operation, messages.isEmpty ? "OpenSSL reported no detail" : messages.joined(separator: "; "))
    }

    public var description: String { "\(operation): \(message)" }
}
