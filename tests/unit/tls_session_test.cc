#include "backends/tls_session.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "backends/tls_context.h"
#include "tests/unit/test_temp_dir.h"

namespace readthru::backends {
namespace {

using Result = TlsSession::Result;
using test::TempDir;

// A throwaway PKI made with OpenSSL's API, written as PEM files: a CA, a server certificate for
// "localhost" and 127.0.0.1 and a client certificate signed by it, and an unrelated CA.
class TestPki {
 public:
  TestPki() {
    EVP_PKEY* ca_key = EVP_EC_gen("P-256");
    X509* ca = makeCert(ca_key, "test CA", nullptr, ca_key, "critical,CA:TRUE", nullptr);
    EVP_PKEY* other_key = EVP_EC_gen("P-256");
    X509* other = makeCert(other_key, "other CA", nullptr, other_key, "critical,CA:TRUE", nullptr);
    EVP_PKEY* server_key = EVP_EC_gen("P-256");
    X509* server =
        makeCert(server_key, "localhost", ca, ca_key, "CA:FALSE", "DNS:localhost,IP:127.0.0.1");
    EVP_PKEY* client_key = EVP_EC_gen("P-256");
    X509* client = makeCert(client_key, "client", ca, ca_key, "CA:FALSE", nullptr);
    ca_cert = writeCert("ca.crt", ca);
    other_ca_cert = writeCert("other-ca.crt", other);
    server_cert = writeCert("server.crt", server);
    server_key_file = writeKey("server.key", server_key);
    client_cert = writeCert("client.crt", client);
    client_key_file = writeKey("client.key", client_key);
    for (X509* x : {ca, other, server, client}) X509_free(x);
    for (EVP_PKEY* k : {ca_key, other_key, server_key, client_key}) EVP_PKEY_free(k);
  }

  TempDir dir;
  std::string ca_cert, other_ca_cert, server_cert, server_key_file, client_cert, client_key_file;

 private:
  static X509* makeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key,
                        const char* constraints, const char* san) {
    X509* x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      REQUIRE(ext != nullptr);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    };
    add(NID_basic_constraints, constraints);
    if (san != nullptr) add(NID_subject_alt_name, san);
    REQUIRE(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
  }
  std::string writeCert(const char* name, X509* x) {
    std::string path = dir.write(name, "");
    FILE* f = fopen(path.c_str(), "w");
    REQUIRE(PEM_write_X509(f, x) == 1);
    fclose(f);
    return path;
  }
  std::string writeKey(const char* name, EVP_PKEY* key) {
    std::string path = dir.write(name, "");
    FILE* f = fopen(path.c_str(), "w");
    REQUIRE(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
    fclose(f);
    return path;
  }
};

const TestPki& pki() {
  static TestPki p;
  return p;
}

// The server side, on OpenSSL directly: memory BIOs, bytes in, bytes out.
class TestServer {
 public:
  // `client_ca`: require a client certificate signed by it.
  explicit TestServer(const std::string& client_ca = "") {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(SSL_CTX_use_certificate_file(ctx_, pki().server_cert.c_str(), SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, pki().server_key_file.c_str(), SSL_FILETYPE_PEM) ==
            1);
    if (!client_ca.empty()) {
      REQUIRE(SSL_CTX_load_verify_file(ctx_, client_ca.c_str()) == 1);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_accept_state(ssl_);
  }
  ~TestServer() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // Takes what the client sent, advances, keeps the plaintext; returns what the server sends.
  std::string exchange(std::string_view in) {
    if (!in.empty()) BIO_write(in_, in.data(), static_cast<int>(in.size()));
    ERR_clear_error();
    if (!SSL_is_init_finished(ssl_)) {
      int rc = SSL_do_handshake(ssl_);
      if (rc != 1 && SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ) failed = true;
    }
    if (SSL_is_init_finished(ssl_)) {
      char buf[16384];
      int n;
      while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0)
        received.append(buf, static_cast<size_t>(n));
    }
    return takeOutput();
  }
  void send(std::string_view plain) {
    REQUIRE(SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) ==
            static_cast<int>(plain.size()));
  }
  void closeNotify() { SSL_shutdown(ssl_); }
  std::string takeOutput() {
    std::string out;
    char buf[16384];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  bool clientShowedCertificate() const {
    X509* peer = SSL_get1_peer_certificate(ssl_);
    X509_free(peer);
    return peer != nullptr;
  }

  std::string received;
  bool failed = false;

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

std::shared_ptr<const TlsContext> context(TlsOptions o) {
  TlsContext::Error e;
  auto c = TlsContext::create(o, &e);
  INFO(e.option, ": ", e.message);
  REQUIRE(c != nullptr);
  return c;
}

TlsOptions trusting(const std::string& ca) {
  TlsOptions o;
  o.enabled = true;
  o.ca_cert_file = ca;
  return o;
}

std::string output(TlsSession* s) {
  resp::ByteBuffer out;
  s->takeOutput(&out);
  return std::string(out.view());
}

// Runs the handshake to its end, moving bytes both ways, each batch cut into `chunk`-byte feeds.
Result handshake(TlsSession* client, TestServer* server, size_t chunk = 1 << 20) {
  for (int i = 0; i < 10; ++i) {
    Result r = client->handshake();
    std::string back = server->exchange(output(client));
    for (size_t at = 0; at < back.size(); at += chunk) {
      client->feed(back.data() + at, std::min(chunk, back.size() - at));
    }
    if (r != Result::kPending) return r;
  }
  FAIL("the handshake did not finish");
  return Result::kError;
}

// Everything the client can decrypt now.
std::string readAll(TlsSession* client, Result* last = nullptr) {
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = 0;
    Result r = client->read(buf, sizeof buf, &n);
    out.append(buf, n);
    if (r != Result::kDone) {
      if (last != nullptr) *last = r;
      return out;
    }
  }
}

TEST_CASE("tls_session: handshake, then requests and replies both ways") {
  TestServer server;
  TlsSession client(context(trusting(pki().ca_cert)), "localhost");
  CHECK_FALSE(client.established());
  REQUIRE(handshake(&client, &server) == Result::kDone);
  CHECK(client.established());
  size_t taken = 0;
  REQUIRE(client.write("*1\r\n$4\r\nPING\r\n", 14, &taken) == Result::kDone);
  CHECK(taken == 14);
  server.exchange(output(&client));
  CHECK(server.received == "*1\r\n$4\r\nPING\r\n");
  server.send("+PONG\r\n");
  std::string back = server.takeOutput();
  client.feed(back.data(), back.size());
  Result last = Result::kDone;
  CHECK(readAll(&client, &last) == "+PONG\r\n");
  CHECK(last == Result::kPending);  // all read: waits for the peer
  CHECK(client.error().empty());
}

TEST_CASE("tls_session: a megabyte each way, fed a few bytes at a time") {
  TestServer server;
  TlsSession client(context(trusting(pki().ca_cert)), "localhost");
  REQUIRE(handshake(&client, &server, 7) == Result::kDone);
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + i / 7);
  size_t taken = 0;
  REQUIRE(client.write(big.data(), big.size(), &taken) == Result::kDone);
  CHECK(taken == big.size());
  CHECK(client.hasOutput());
  std::string cipher = output(&client);
  CHECK_FALSE(client.hasOutput());
  for (size_t at = 0; at < cipher.size(); at += 1000) {
    server.exchange(std::string_view(cipher).substr(at, 1000));
  }
  CHECK(server.received == big);
  server.send(big);
  std::string back = server.takeOutput();
  std::string got;
  for (size_t at = 0; at < back.size(); at += 333) {  // record boundaries fall anywhere
    client.feed(back.data() + at, std::min<size_t>(333, back.size() - at));
    got += readAll(&client);
  }
  CHECK(got == big);
}

TEST_CASE("tls_session: an IP address is checked against the certificate's IP addresses") {
  {
    TestServer server;
    TlsSession client(context(trusting(pki().ca_cert)), "127.0.0.1");
    CHECK(handshake(&client, &server) == Result::kDone);
  }
  TestServer server;
  TlsSession client(context(trusting(pki().ca_cert)), "127.0.0.2");
  CHECK(handshake(&client, &server) == Result::kError);
  CHECK(client.error() == "certificate verify failed: IP address mismatch");
}

TEST_CASE("tls_session: a certificate that does not verify fails the handshake, saying why") {
  SUBCASE("another CA") {
    TestServer server;
    TlsSession client(context(trusting(pki().other_ca_cert)), "localhost");
    CHECK(handshake(&client, &server) == Result::kError);
    CHECK(client.error() == "certificate verify failed: unable to get local issuer certificate");
    CHECK_FALSE(client.established());
    // Once failed, the session stays failed.
    size_t n = 0;
    char buf[16];
    CHECK(client.read(buf, sizeof buf, &n) == Result::kError);
  }
  SUBCASE("another name") {
    TestServer server;
    TlsSession client(context(trusting(pki().ca_cert)), "redis.example");
    CHECK(handshake(&client, &server) == Result::kError);
    CHECK(client.error() == "certificate verify failed: hostname mismatch");
  }
  SUBCASE("verify = false accepts both") {
    TlsOptions o = trusting(pki().other_ca_cert);
    o.verify = false;
    TestServer server;
    TlsSession client(context(o), "redis.example");
    CHECK(handshake(&client, &server) == Result::kDone);
  }
}

TEST_CASE("tls_session: a client certificate for a server that requires one") {
  SUBCASE("shown") {
    TlsOptions o = trusting(pki().ca_cert);
    o.cert_file = pki().client_cert;
    o.key_file = pki().client_key_file;
    TestServer server(pki().ca_cert);
    TlsSession client(context(o), "localhost");
    REQUIRE(handshake(&client, &server) == Result::kDone);
    CHECK_FALSE(server.failed);
    CHECK(server.clientShowedCertificate());
  }
  SUBCASE("missing: under TLS 1.3 the client learns it after its handshake, from an alert") {
    TestServer server(pki().ca_cert);
    TlsSession client(context(trusting(pki().ca_cert)), "localhost");
    REQUIRE(handshake(&client, &server) == Result::kDone);
    CHECK(server.failed);
    Result last = Result::kDone;
    readAll(&client, &last);
    CHECK(last == Result::kError);
    CHECK(client.error().find("certificate required") != std::string::npos);
  }
}

TEST_CASE("tls_session: a peer that does not speak TLS is an error, not a wait") {
  TlsSession client(context(trusting(pki().ca_cert)), "localhost");
  CHECK(client.handshake() == Result::kPending);
  CHECK(client.hasOutput());  // the ClientHello
  std::string plain = "-ERR unknown command\r\n";
  client.feed(plain.data(), plain.size());
  CHECK(client.handshake() == Result::kError);
  CHECK_FALSE(client.error().empty());
}

TEST_CASE("tls_session: the server's close_notify ends the session") {
  TestServer server;
  TlsSession client(context(trusting(pki().ca_cert)), "localhost");
  REQUIRE(handshake(&client, &server) == Result::kDone);
  server.closeNotify();
  std::string back = server.takeOutput();
  client.feed(back.data(), back.size());
  Result last = Result::kDone;
  readAll(&client, &last);
  CHECK(last == Result::kClosed);
}

TEST_CASE("tls_context: a file it cannot use names the option and says why") {
  TempDir dir;
  std::string missing = (dir.path() / "missing.pem").string();
  std::string garbage = dir.write("garbage.pem", "not a certificate\n");
  struct Case {
    const char* what;
    TlsOptions options;
    std::string option;
    std::string message;
  };
  auto with = [](auto set) {
    TlsOptions o;
    o.enabled = true;
    set(o);
    return o;
  };
  const Case cases[] = {
      {"missing CA file", with([&](TlsOptions& o) { o.ca_cert_file = missing; }), "ca_cert_file",
       "cannot read " + missing + ": No such file or directory"},
      {"missing CA dir", with([&](TlsOptions& o) { o.ca_cert_dir = missing; }), "ca_cert_dir",
       "cannot read " + missing + ": No such file or directory"},
      {"CA file without certificates", with([&](TlsOptions& o) { o.ca_cert_file = garbage; }),
       "ca_cert_file", "no CA certificate in " + garbage},
      {"missing certificate", with([&](TlsOptions& o) {
         o.cert_file = missing;
         o.key_file = pki().client_key_file;
       }),
       "cert_file", "cannot read " + missing},
      {"not a certificate", with([&](TlsOptions& o) {
         o.cert_file = garbage;
         o.key_file = pki().client_key_file;
       }),
       "cert_file", "no certificate in " + garbage},
      {"not a key", with([&](TlsOptions& o) {
         o.cert_file = pki().client_cert;
         o.key_file = garbage;
       }),
       "key_file", "no unencrypted private key in " + garbage},
      {"another certificate's key", with([&](TlsOptions& o) {
         o.cert_file = pki().client_cert;
         o.key_file = pki().server_key_file;
       }),
       "key_file", "the key does not match the certificate of cert_file"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    TlsContext::Error e;
    CHECK(TlsContext::create(c.options, &e) == nullptr);
    CHECK(e.option == c.option);
    CHECK(e.message.substr(0, c.message.size()) == c.message);
  }
  CHECK(ERR_peek_error() == 0);  // nothing left behind for the next OpenSSL call
}

}  // namespace
}  // namespace readthru::backends
