#include "backends/tls_context.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace readthru::backends {

std::string takeOpensslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    char buf[256];
    if (reason == nullptr) {
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
    if (out.find(reason) != std::string::npos) continue;  // "PEM lib" after "no start line"...
    if (!out.empty()) out += ": ";
    out += reason;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

namespace {

// Checked before OpenSSL sees the path, so the message says what the system says ("No such file
// or directory", "Permission denied") rather than OpenSSL's "system lib".
bool readable(const std::string& path, bool directory, std::string* why) {
  if (directory) {
    DIR* d = opendir(path.c_str());
    if (d != nullptr) {
      closedir(d);
      return true;
    }
  } else {
    FILE* f = fopen(path.c_str(), "rb");
    if (f != nullptr) {
      fclose(f);
      return true;
    }
  }
  *why = "cannot read " + path + ": " + strerror(errno);
  return false;
}

// An encrypted key would make OpenSSL prompt on the terminal; refuse it instead.
int noPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::create(const TlsOptions& o, Error* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = {"", takeOpensslErrors()};
    return nullptr;
  }
  std::shared_ptr<const TlsContext> context(new TlsContext(ctx, o.verify));
  auto fail = [&](const char* option, std::string message) {
    *error = {option, std::move(message)};
    return nullptr;
  };
  // As redis.conf's default tls-protocols: TLSv1.2 and TLSv1.3.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Memory BIOs: a write may be retried from a buffer that moved (it grew); idle connections give
  // their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx, noPassphrase);
  SSL_CTX_set_verify(ctx, o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  std::string why;
  if (!o.ca_cert_file.empty()) {
    if (!readable(o.ca_cert_file, false, &why)) return fail("ca_cert_file", why);
    if (SSL_CTX_load_verify_file(ctx, o.ca_cert_file.c_str()) != 1) {
      return fail("ca_cert_file",
                  "no CA certificate in " + o.ca_cert_file + ": " + takeOpensslErrors());
    }
  }
  if (!o.ca_cert_dir.empty()) {
    if (!readable(o.ca_cert_dir, true, &why)) return fail("ca_cert_dir", why);
    if (SSL_CTX_load_verify_dir(ctx, o.ca_cert_dir.c_str()) != 1) {
      return fail("ca_cert_dir", o.ca_cert_dir + ": " + takeOpensslErrors());
    }
  }
  if (o.ca_cert_file.empty() && o.ca_cert_dir.empty() && o.verify &&
      SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return fail("", "the system's CA store: " + takeOpensslErrors());
  }
  if (!o.cert_file.empty()) {
    if (!readable(o.cert_file, false, &why)) return fail("cert_file", why);
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
      return fail("cert_file", "no certificate in " + o.cert_file + ": " + takeOpensslErrors());
    }
  }
  if (!o.key_file.empty()) {
    if (!readable(o.key_file, false, &why)) return fail("key_file", why);
    if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        return fail("key_file", "the key does not match the certificate of cert_file");
      }
      return fail("key_file",
                  "no unencrypted private key in " + o.key_file + ": " + takeOpensslErrors());
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return fail("key_file",
                  "the key does not match the certificate of cert_file: " + takeOpensslErrors());
    }
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace readthru::backends
