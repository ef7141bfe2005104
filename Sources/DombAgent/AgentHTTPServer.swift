//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The agent's mutual-TLS setting, as Keylime expects it (`enable_agent_mtls = True` by
/// default): the agent presents its own (self-signed) certificate, which it registered as
/// `mtls_cert`, and accepts only clients whose certificate chains to `trustedClientCA`
/// (the verifier's and tenant's CA, `cv_ca/cacert.crt`).
public struct AgentTLS: Sendable {
    public var certificatePEM: [UInt8]
    public var privateKeyPEM: [UInt8]
    public var trustedClientCA: String

    public init(certificatePEM: [UInt8], privateKeyPEM: [UInt8], trustedClientCA: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.trustedClientCA = trustedClientCA
    }

    func serverContext() throws -> NIOSSLContext {
        let certificates = try NIOSSLCertificate.fromPEMBytes(certificatePEM).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: privateKeyPEM, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: certificates, privateKey: .privateKey(key))
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .file(trustedClientCA)
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }
}

/// `domb agent`'s HTTP/1.1 server on SwiftNIO: one request at a time per connection, the
/// request target handed to ``KeylimeAgent/respond(method:target:)`` on a thread pool (TPM
/// commands block), bodies capped (Keylime's pull API sends none that domb uses).
public final class AgentHTTPServer: Sendable {
    /// The largest request body accepted (larger: 413).
    public static let maximumBodySize = 64 << 10
    /// The largest request head NIO's parser accepts is its own 80 KiB; targets are
    /// capped again by ``KeylimeAgentRequest/maximumTargetLength``.

    let agent: KeylimeAgent
    let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool
    let channel: any Channel

    /// The address actually bound (port 0 picks a free one).
    public var localPort: Int? { channel.localAddress?.port }

    /// Binds `host:port` and starts serving.
    public init(agent: KeylimeAgent, host: String, port: Int, tls: AgentTLS?) async throws {
        self.agent = agent
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let sslContext = try tls?.serverContext()
        let logger = agent.logger
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                        }
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(AgentRequestHandler(agent: agent, pool: pool, logger: logger))
                    }
                }
                .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port)
                .get()
        } catch {
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
        self.group = group
        self.pool = pool
    }

    /// Runs until the listening channel closes.
    public func wait() async throws {
        try await channel.closeFuture.get()
    }

    public func close() async {
        try? await channel.close()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

/// One connection's request handling.
final class AgentRequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let agent: KeylimeAgent
    let pool: NIOThreadPool
    let logger: Logger
    private var head: HTTPRequestHead?
    private var bodySize = 0
    private var tooLarge = false

    init(agent: KeylimeAgent, pool: NIOThreadPool, logger: Logger) {
        self.agent = agent
        self.pool = pool
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodySize = 0
            tooLarge = false
        case .body(let buffer):
            bodySize += buffer.readableBytes
            if bodySize > AgentHTTPServer.maximumBodySize { tooLarge = true }
        case .end:
            guard let head else { return }
            self.head = nil
            if tooLarge {
                write(context: context, head: head, response: .json(413, "request body larger than \(AgentHTTPServer.maximumBodySize) bytes"))
                return
            }
            let method = head.method.rawValue
            let target = head.uri
            let agent = self.agent
            let logger = self.logger
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) {
                agent.respond(method: method, target: target)
            }.whenComplete { result in
                let (handler, context) = loopBound.value
                let response: AgentResponse
                switch result {
                case .success(let answer): response = answer
                case .failure(let error):
                    logger.error("request failed", metadata: ["error": "\(error)"])
                    response = .json(500, "internal error")
                }
                logger.info(
                    "request", metadata: ["method": "\(method)", "target": "\(String(target.prefix(160)))", "status": "\(response.status)"])
                handler.write(context: context, head: head, response: response)
            }
        }
    }

    func write(context: ChannelHandlerContext, head: HTTPRequestHead, response: AgentResponse) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(response.body.count))
        let keepAlive = head.isKeepAlive && response.status < 400
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
