#pragma once
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

// OpenSSL 3 exposes some helpers only as function-like macros, which Swift cannot import.
static inline int COpenSSL_EVP_PKEY_CTX_set_rsa_padding(EVP_PKEY_CTX *ctx, int pad) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, pad);
}
static inline int COpenSSL_EVP_PKEY_CTX_set_rsa_pss_saltlen(EVP_PKEY_CTX *ctx, int len) {
    return EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, len);
}
static inline int COpenSSL_BIO_get_mem_data(BIO *bio, char **pp) { return (int)BIO_get_mem_data(bio, pp); }

// Release keys in tokens (docs/secrets.md): PKCS#11 through libp11's "pkcs11" engine
// (Debian 12 has no pkcs11 provider), TPM keys through the tpm2-openssl provider
// (OSSL_STORE, a library context of its own).
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/engine.h>

// The ENGINE API is deprecated in OpenSSL 3 but is the only way to the pkcs11 engine;
// these wrappers are the one place that calls it.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
/// A functional reference to engine `engine_id` (loaded from ENGINESDIR if not built in),
/// or NULL. Release with COpenSSL_engine_release.
static inline ENGINE *COpenSSL_engine_acquire(const char *engine_id) {
    ENGINE *engine = ENGINE_by_id(engine_id);
    if (engine == NULL) return NULL;
    if (ENGINE_init(engine) != 1) {
        ENGINE_free(engine);
        return NULL;
    }
    return engine;
}
static inline void COpenSSL_engine_release(ENGINE *engine) {
    ENGINE_finish(engine);
    ENGINE_free(engine);
}
/// The engine's private key `key_id` with OpenSSL's default (terminal) UI for a PIN prompt.
static inline EVP_PKEY *COpenSSL_engine_load_private_key(ENGINE *engine, const char *key_id) {
    return ENGINE_load_private_key(engine, key_id, UI_OpenSSL(), NULL);
}
#pragma clang diagnostic pop
