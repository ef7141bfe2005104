//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Testing

@Suite struct MultiHasherTests {
    @Test func matchesOpenSSLCommandLineInEveryBank() throws {
        let directory = try TemporaryDirectory()
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let path = try directory.write("data.bin", data)
        let banks: [HashAlgorithm] = [.sha1, .sha256, .sha384, .sha512]
        var hasher = try MultiHasher(algorithms: banks)
        // Feed in uneven chunks to exercise streaming.
        var index = 0
        var chunk = 1
        while index < data.count {
            let end = min(data.count, index + chunk)
            hasher.update(data[index..<end])
            index = end
            chunk = chunk * 3 + 1
        }
        let digests = try hasher.finalize()
        #expect(digests.algorithms == banks)
        for bank in banks {
            let expected = try Tools.run("openssl", ["dgst", "-\(bank.name)", "-binary", path]).stdout
            #expect(digests[bank] == expected, "\(bank)")
        }
    }

    @Test func unknownAlgorithmIsAnError() {
        #expect(throws: CryptoError.self) { _ = try MultiHasher(algorithms: [HashAlgorithm(rawValue: 0x99)]) }
    }
}
