//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombLaunch
import DombTPM
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Registration with Keylime's registrar, as rust-keylime `registrar_client.rs` and keylime
/// 7.14 `web/registrar/agents_controller.py` do it, over the registrar's plain-HTTP port
/// (8890, where Keylime allows exactly these agent endpoints):
///
/// 1. `POST /v<api>/agents/<uuid>` with `ek_tpm`, `ekcert`, `aik_tpm` (base64 TPM2B_PUBLIC
///    and DER), `ip`, `port` and `mtls_cert` (PEM, or `"disabled"`); the answer's
///    `results.blob` is a tpm2-tools credential (TPM2_MakeCredential for the AK name
///    under the EK, over a 32-character secret).
/// 2. TPM2_ActivateCredential recovers the secret; `auth_tag` = hex HMAC-SHA384 with the
///    base64 of the secret as key over the UUID (`crypto.do_hmac`).
/// 3. `POST /v<api>/agents/<uuid>/activate` with `{auth_tag}`.
public struct RegistrarClient: Sendable {
    public var host: String
    public var port: Int
    /// The largest registrar answer read.
    static let maximumResponseSize = 1 << 20

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// What the agent registers as its contact address and TLS identity.
    public struct Contact: Sendable {
        public var ip: String
        public var port: Int
        /// PEM certificate, or nil when the agent serves plain HTTP ("disabled").
        public var mtlsCertificatePEM: String?

        public init(ip: String, port: Int, mtlsCertificatePEM: String?) {
            self.ip = ip
            self.port = port
            self.mtlsCertificatePEM = mtlsCertificatePEM
        }
    }

    /// Registers and activates; returns the API version used.
    @discardableResult
    public func register(agent: KeylimeAgent, contact: Contact) async throws -> KeylimeAPIVersion {
        let configuration = agent.configuration
        let api = try await negotiateVersion()
        let (ek, akPublic) = try agent.withTPM { tpm in
            (try tpm.readEndorsementKey(configuration.ekType, handle: configuration.ekHandle), try tpm.publicArea(persistent: configuration.akHandle))
        }
        var body: [String: Any] = [
            "ek_tpm": Data(ek.publicArea).base64EncodedString(),
            "aik_tpm": Data(akPublic).base64EncodedString(),
            "ip": contact.ip, "port": contact.port,
            "mtls_cert": contact.mtlsCertificatePEM ?? "disabled",
        ]
        if let certificate = ek.certificate {
            body["ekcert"] = Data(try EndorsementCertificate.trimmedDER(certificate)).base64EncodedString()
        }
        let uuid = configuration.uuid
        let registered = try await post("/v\(api)/agents/\(uuid)", json: body)
        guard registered.status == 200 else {
            throw AgentError("the registrar refused the registration: HTTP \(registered.status): \(Self.message(registered.body))")
        }
        guard let blobText = Self.results(registered.body)?["blob"] as? String, let blob = Data(base64Encoded: blobText) else {
            throw AgentError("the registrar's answer carries no base64 results.blob")
        }
        let (credential, encryptedSecret) = try Self.parseCredentialBlob(Array(blob))
        let secret = try agent.withTPM { tpm in
            try tpm.activateCredential(
                attestationKey: configuration.akHandle, endorsementKey: configuration.ekType, endorsementHandle: configuration.ekHandle,
                credential: credential, encryptedSecret: encryptedSecret)
        }
        let tag = try Self.authTag(secret: secret, uuid: uuid)
        let activated = try await post("/v\(api)/agents/\(uuid)/activate", json: ["auth_tag": tag])
        guard activated.status == 200 else {
            throw AgentError("the registrar refused the activation: HTTP \(activated.status): \(Self.message(activated.body))")
        }
        agent.markActivated()
        return api
    }

    /// `auth_tag`: hex HMAC-SHA384(key = base64(secret), message = uuid).
    public static func authTag(secret: [UInt8], uuid: String) throws -> String {
        let key = Array(Data(secret).base64EncodedString().utf8)
        return try CredentialMaker.hmac(.sha384, key: key, message: Array(uuid.utf8)).hexString
    }

    /// tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    /// Returns the credential with its size prefix and the secret's contents.
    public static func parseCredentialBlob(_ blob: [UInt8]) throws -> ([UInt8], [UInt8]) {
        var reader = ByteReader(blob)
        let magic = try reader.readBE(UInt32.self, "credential blob magic")
        let version = try reader.readBE(UInt32.self, "credential blob version")
        guard magic == 0xBADC_C0DE, version == 1 else {
            throw AgentError("the registrar's blob is not a tpm2-tools credential (magic 0x\(String(magic, radix: 16)), version \(version))")
        }
        let credential = try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPM2B_ID_OBJECT")
        let secret = try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPM2B_ENCRYPTED_SECRET")
        try reader.expectEnd("credential blob")
        var withSize = ByteWriter()
        withSize.writeBE(UInt16(credential.count))
        withSize.writeBytes(credential)
        return (withSize.bytes, Array(secret))
    }

    /// The highest 2.x version both the registrar (`GET /version`) and domb speak.
    func negotiateVersion() async throws -> KeylimeAPIVersion {
        let answer = try await request(method: .GET, path: "/version", body: nil)
        guard answer.status == 200, let versions = Self.results(answer.body)?["supported_versions"] as? [String] else {
            throw AgentError("the registrar's /version answered HTTP \(answer.status) without results.supported_versions")
        }
        let offered = Set(versions.compactMap { KeylimeAPIVersion(parsing: $0) })
        let ours = [KeylimeAPIVersion(2, 6)] + KeylimeAgentRequest.supportedVersions.reversed()
        guard let chosen = ours.first(where: offered.contains) else {
            throw AgentError("the registrar supports none of API \(ours.map(\.description).joined(separator: ", "))")
        }
        return chosen
    }

    static func results(_ body: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) .flatMap { $0 as? [String: Any] }?["results"] as? [String: Any]
    }

    static func message(_ body: [UInt8]) -> String {
        let status = (try? JSONSerialization.jsonObject(with: Data(body))).flatMap { $0 as? [String: Any] }?["status"] as? String
        return EnrollmentFormat.quoted(status ?? String(decoding: body.prefix(200), as: UTF8.self))
    }

    func post(_ path: String, json: [String: Any]) async throws -> (status: Int, body: [UInt8]) {
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        return try await request(method: .POST, path: path, body: Array(data))
    }

    /// One HTTP/1.1 request on its own connection.
    func request(method: HTTPMethod, path: String, body: [UInt8]?) async throws -> (status: Int, body: [UInt8]) {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: (Int, [UInt8]).self)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: host, port: port)
            .get()
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Connection", value: "close")
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.count))
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        // Closing the channel fails the promise (ResponseCollector.channelInactive).
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(60)) { channel.close(promise: nil) }
        defer { timeout.cancel() }
        let result = try await promise.futureResult.get()
        try? await channel.close()
        return result
    }
}

final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<(Int, [UInt8])>
    var status = 0
    var body: [UInt8] = []
    /// A promise is completed once; every later event is ignored.
    var completed = false

    init(promise: EventLoopPromise<(Int, [UInt8])>) { self.promise = promise }

    func finish(_ result: Result<(Int, [UInt8]), any Error>) {
        guard !completed else { return }
        completed = true
        promise.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let buffer):
            guard !completed else { return }
            body += buffer.readableBytesView
            if body.count > RegistrarClient.maximumResponseSize {
                finish(.failure(AgentError("the registrar's answer is larger than \(RegistrarClient.maximumResponseSize) bytes")))
                context.close(promise: nil)
            }
        case .end: finish(.success((status, body)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(AgentError("the registrar closed the connection (or did not answer within 60 s)")))
    }
}
