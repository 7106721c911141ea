#include "backends/tls_session.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstdlib>

namespace readthru::backends {
namespace {

bool isIpAddress(const std::string& s) {
  unsigned char addr[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), addr) == 1 || inet_pton(AF_INET6, s.c_str(), addr) == 1;
}

}  // namespace

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, const std::string& server_name)
    : context_(std::move(context)) {
  ERR_clear_error();
  ssl_ = SSL_new(context_->ctx());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    error_ = takeOpensslErrors();
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    return;
  }
  // An empty input BIO means "wait for the peer", not end of stream.
  BIO_set_mem_eof_return(in_, -1);
  SSL_set_bio(ssl_, in_, out_);  // the SSL owns both BIOs from here on
  SSL_set_connect_state(ssl_);
  bool ip = isIpAddress(server_name);
  if (!server_name.empty() && !ip) SSL_set_tlsext_host_name(ssl_, server_name.c_str());
  if (context_->verify() && !server_name.empty()) {
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_name.c_str())
                : SSL_set1_host(ssl_, server_name.c_str());
    if (ok != 1) error_ = "bad server name '" + server_name + "': " + takeOpensslErrors();
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }  // and its BIOs

void TlsSession::feed(const char* data, size_t len) {
  if (len == 0 || !error_.empty()) return;
  // A memory BIO only fails to grow when memory is out: fatal, as in resp::ByteBuffer.
  if (BIO_write(in_, data, static_cast<int>(len)) != static_cast<int>(len)) abort();
}

TlsSession::Result TlsSession::handshake() {
  if (!error_.empty()) return Result::kError;
  if (established_) return Result::kDone;
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established_ = true;
    return Result::kDone;
  }
  return failed(rc);
}

TlsSession::Result TlsSession::read(char* buf, size_t cap, size_t* n) {
  *n = 0;
  if (!error_.empty()) return Result::kError;
  ERR_clear_error();
  int rc = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
  if (rc > 0) {
    *n = static_cast<size_t>(rc);
    return Result::kDone;
  }
  return failed(rc);
}

TlsSession::Result TlsSession::write(const char* data, size_t len, size_t* taken) {
  *taken = 0;
  if (!error_.empty()) return Result::kError;
  if (retry_len_ != 0) len = retry_len_;
  if (len == 0) return Result::kDone;
  ERR_clear_error();
  // Without SSL_MODE_ENABLE_PARTIAL_WRITE a write takes all or nothing; the memory BIO never
  // pushes back, so "nothing" only happens when the peer's bytes are needed first.
  int rc = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(len, INT_MAX)));
  if (rc > 0) {
    retry_len_ = 0;
    *taken = static_cast<size_t>(rc);
    return Result::kDone;
  }
  Result r = failed(rc);
  if (r == Result::kPending) retry_len_ = len;
  return r;
}

void TlsSession::takeOutput(resp::ByteBuffer* out) {
  if (out_ == nullptr) return;
  size_t n = BIO_ctrl_pending(out_);
  if (n == 0) return;
  int got = BIO_read(out_, out->prepareAppend(n), static_cast<int>(n));
  if (got > 0) out->commit(static_cast<size_t>(got));
}

bool TlsSession::hasOutput() const { return out_ != nullptr && BIO_ctrl_pending(out_) > 0; }

TlsSession::Result TlsSession::failed(int rc) {
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return Result::kPending;
    case SSL_ERROR_ZERO_RETURN:
      return Result::kClosed;
    default:
      break;
  }
  unsigned long first = ERR_peek_error();
  error_ = first != 0 ? takeOpensslErrors() : "TLS session failed";
  // "certificate verify failed" alone does not say why; the verification result does.
  if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
      ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) error_ += std::string(": ") + X509_verify_cert_error_string(v);
  }
  return Result::kError;
}

}  // namespace readthru::backends
