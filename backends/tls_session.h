#pragma once
// TlsSession: the client side of one TLS connection, as a state machine over memory BIOs. It
// does no I/O: the owner feeds it the bytes read from the socket and writes out the bytes it
// produces (UpstreamConn drives it with libuv), so it can be tested with no socket at all.
//
//   socket bytes -> feed() -> handshake() until kDone -> read() -> plaintext
//   plaintext    -> write() -> takeOutput() -> socket bytes
//
// After any call, takeOutput() may have bytes to send (handshake messages, records, alerts).
// Errors are strings: OpenSSL's reasons, with the verification failure spelled out
// ("certificate verify failed: unable to get local issuer certificate").

#include <memory>
#include <string>

#include "backends/tls_context.h"
#include "resp/byte_buffer.h"

struct ssl_st;  // OpenSSL's SSL
struct bio_st;  // OpenSSL's BIO

namespace readthru::backends {

class TlsSession {
 public:
  enum class Result {
    kDone,     // handshake(): established; read(): plaintext returned; write(): bytes taken
    kPending,  // needs more bytes from the peer (feed(), then call again)
    kClosed,   // read(): the peer closed the session (close_notify)
    kError,    // see error(); the session is unusable
  };

  // `server_name`: what the upstream's certificate must name when the context verifies. A host
  // name is also sent as SNI; an IP address literal is checked against the certificate's IP
  // addresses and not sent (SNI carries names only).
  TlsSession(std::shared_ptr<const TlsContext> context, const std::string& server_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Bytes read from the socket; copied, so the caller's buffer is free again at return.
  void feed(const char* data, size_t len);
  // Starts (first call) or advances the handshake.
  Result handshake();
  bool established() const { return established_; }
  // Decrypts at most `cap` bytes into `buf`: kDone with *n > 0, or kPending with *n == 0 when
  // no whole record is buffered.
  Result read(char* buf, size_t cap, size_t* n);
  // Encrypts `len` bytes: all of them, or none with kPending (a renegotiation wants the peer's
  // bytes first). After kPending, call again after the next feed() with the same bytes at the
  // front of `data` (they may have moved, and more may follow: only as many are taken).
  // *taken is what was encrypted.
  Result write(const char* data, size_t len, size_t* taken);
  // Appends the bytes waiting to go to the socket to `out`.
  void takeOutput(resp::ByteBuffer* out);
  bool hasOutput() const;
  const std::string& error() const { return error_; }

 private:
  Result failed(int rc);

  std::shared_ptr<const TlsContext> context_;  // the SSL_CTX outlives every SSL made from it
  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;   // what feed() gave, for OpenSSL to read
  bio_st* out_ = nullptr;  // what OpenSSL wrote, for takeOutput()
  size_t retry_len_ = 0;   // a write() that got kPending: its length, for the retry
  bool established_ = false;
  std::string error_;
};

}  // namespace readthru::backends
