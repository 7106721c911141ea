#pragma once
// RequestParser: client bytes -> commands, in both of redis-server's request forms:
//   multibulk  *<argc>\r\n$<len>\r\n<bytes>\r\n ...   (what every client library sends)
//   inline     SET key "a value"\r\n                   (telnet, raw sockets; quotes as redis-cli)
// It accepts exactly what redis-server accepts and rejects the rest with redis-server's own error
// text (resp/errors.h). It never touches a socket and never copies argument bytes.

#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <string>
#include <string_view>
#include <vector>

namespace readthru::resp {

struct ParserLimits {
  size_t max_inline = 64 * 1024;                   // PROTO_INLINE_MAX_SIZE
  int64_t max_multibulk = 1024 * 1024 * 1024 - 1;  // argc limit (redis: INT_MAX)
  int64_t max_bulk = 512ll * 1024 * 1024;          // proto-max-bulk-len
  // Before a client authenticates, redis-server allows only small requests; readthru does the same.
  int64_t unauth_max_multibulk = 10;
  int64_t unauth_max_bulk = 16384;
};

// One parsed command. The views point into the buffer passed to parse(); they stay valid until the
// caller discards or moves those bytes. Inline arguments with quotes or escapes are unescaped into
// storage owned by the parser; they stay valid until the next call to parse().
struct Command {
  std::vector<std::string_view> argv;
  std::string_view raw;  // the whole request as received: forwardable as is when !is_inline
  bool is_inline = false;
};

enum class ParseStatus {
  kNeedMore,  // consumed bytes (if any) carry no command yet; call again with more data
  kCommand,   // *out holds a command; `consumed` bytes of the buffer belong to it
  kError,     // protocol error: error() holds redis-server's text; the connection must close
};

class RequestParser {
 public:
  // `limits` must outlive the parser (one set is shared by every client of a server).
  explicit RequestParser(const ParserLimits* limits) : limits_(limits) {}

  // Parses from `data`, which must start at the first byte not yet consumed, i.e. the caller drops
  // `consumed` bytes after each call and passes the rest (plus new bytes) next time. Progress
  // inside a partial request is remembered, so a large request arriving in pieces is scanned once.
  // Empty requests (a blank inline line, "*0\r\n", "*-1\r\n") are consumed and skipped, as Redis
  // does. `authenticated` selects the stricter pre-auth limits.
  ParseStatus parse(const char* data, size_t len, size_t* consumed, Command* out,
                    bool authenticated = true);

  const std::string& error() const { return error_; }

  // The length the current partial request will have at least, counted from its first byte
  // (0 when unknown); lets the caller reserve buffer space once for a large bulk.
  size_t bytesWanted() const;

 private:
  ParseStatus parseInline(const char* data, size_t len, size_t* consumed, Command* out);
  ParseStatus parseMultibulk(const char* data, size_t len, size_t* consumed, Command* out,
                             bool authenticated);
  // A whole request of the usual shape, in one pass: false (and no state changed) for anything
  // else, which parseMultibulk() then takes byte by byte.
  bool parseWholeMultibulk(const char* data, size_t len, size_t* consumed, Command* out,
                           bool authenticated) const;
  ParseStatus fail(std::string_view message);
  void reset();

  const ParserLimits* limits_;
  std::string error_;
  // Multibulk progress, as offsets from the start of the current request.
  int64_t argc_ = -1;                            // -1: header not read yet
  int64_t bulk_len_ = -1;                        // -1: next bulk header not read yet
  size_t pos_ = 0;                               // first unscanned byte
  std::vector<std::pair<size_t, size_t>> args_;  // (offset, length) per argument read so far
  std::forward_list<std::string> unescaped_;     // unescaped inline arguments (stable addresses)
};

// Splits an inline request line as redis-server's sdssplitargs does: spaces separate, "double
// quotes" take \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take \'. Returns false on
// unbalanced quotes. Arguments that needed no unescaping are views into `line`; the others are
// stored in `storage` (which must outlive the views).
bool splitInlineArgs(std::string_view line, std::vector<std::string_view>* out,
                     std::forward_list<std::string>* storage);

}  // namespace readthru::resp
