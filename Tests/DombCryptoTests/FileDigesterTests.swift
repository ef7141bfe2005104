//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

@Suite struct FileDigesterTests {
    /// Every bank in one pass equals `openssl dgst` per bank; the data is read once.
    @Test(arguments: [0, 1, 4096, 1_000_003])
    func oneReadPassMatchesOpenSSL(size: Int) throws {
        let directory = try TemporaryDirectory()
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let path = try directory.write("data", bytes)
        let banks = HashAlgorithm.known.filter(MultiHasher.supports)
        #expect(banks.contains(.sm3_256), "Debian's OpenSSL 3 has SM3")
        let result = try FileDigester(algorithms: banks, bufferSize: 64 << 10).digest(path: path)
        #expect(result.size == UInt64(size))
        #expect(result.bytesRead == UInt64(size), "read once")
        // One read per buffer-full, plus the read that returns end of file.
        #expect(result.readCalls == (size + (64 << 10) - 1) / (64 << 10) + 1)
        for bank in banks {
            let name = bank == .sm3_256 ? "sm3" : bank.name
            let expected = try Tools.run("openssl", ["dgst", "-\(name)", "-binary", path]).stdout
            #expect(result.digests[bank] == expected, "\(bank)")
        }
    }

    @Test func errorsNameThePath() throws {
        let directory = try TemporaryDirectory()
        #expect { try FileDigester(algorithms: [.sha256]).digest(path: directory.file("missing")) } throws: { error in
            "\(error)".contains(directory.file("missing")) && "\(error)".contains("no such file")
        }
        #expect { try FileDigester(algorithms: [.sha256]).digest(path: directory.path) } throws: { error in
            "\(error)".contains("not a regular file")
        }
    }
}
