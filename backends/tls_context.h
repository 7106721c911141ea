#pragma once
// TlsContext: the OpenSSL client context (SSL_CTX) for TLS to the upstream, built once from the
// configuration and shared by every upstream connection (each has its own TlsSession over it).
// Building it reads every file it names, so a missing file, a certificate that does not parse or
// a key that does not match its certificate is found at start, not on the first connect.
//
// Immutable once built: sessions only read it, on the loop thread.

#include <memory>
#include <string>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX; only tls_context.cc and tls_session.cc include OpenSSL

namespace readthru::backends {

// [upstream] tls_* in the configuration; paths are already resolved.
struct TlsOptions {
  bool enabled = false;
  std::string ca_cert_file;  // PEM bundle of trusted CAs
  std::string ca_cert_dir;   // a c_rehash'ed directory of CAs
  // Both or neither: the client certificate (PEM, chain allowed) and its private key (PEM,
  // unencrypted), for an upstream with tls-auth-clients yes.
  std::string cert_file;
  std::string key_file;
  // The name the upstream's certificate must carry (also sent as SNI). Empty: the upstream host.
  std::string server_name;
  bool verify = true;  // false: any certificate is accepted (the log warns)
};

class TlsContext {
 public:
  // Why create() failed: `option` is the TlsOptions field at fault ("ca_cert_file", "cert_file",
  // ...; empty when none is), `message` OpenSSL's or the system's reason.
  struct Error {
    std::string option;
    std::string message;
  };

  // nullptr and `error` set when a file cannot be read or used. With neither ca_cert_file nor
  // ca_cert_dir, the system's default CA store is trusted.
  static std::shared_ptr<const TlsContext> create(const TlsOptions& options, Error* error);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* ctx() const { return ctx_; }
  bool verify() const { return verify_; }

 private:
  TlsContext(ssl_ctx_st* ctx, bool verify) : ctx_(ctx), verify_(verify) {}

  ssl_ctx_st* ctx_;
  bool verify_;
};

// Empties OpenSSL's error queue of this thread into one line of reasons ("certificate verify
// failed", "no start line: PEM lib"). Call ERR_clear_error() before the call that failed.
std::string takeOpensslErrors();

}  // namespace readthru::backends
