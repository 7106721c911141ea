#pragma once
// Appends RESP replies to a byte string, in the dialect of the client's protocol version:
// RESP2 (Redis's default) or RESP3 (after HELLO 3). Used for every reply readthru writes itself.

#include <cstdint>
#include <string>
#include <string_view>

namespace readthru::resp {

class ReplyEncoder {
 public:
  ReplyEncoder(std::string* out, int protocol) : out_(out), protocol_(protocol) {}

  void simple(std::string_view s);
  // `message` includes the error code, e.g. "ERR syntax error" or "NOAUTH Authentication ...".
  void error(std::string_view message);
  void integer(int64_t n);
  void bulk(std::string_view s);
  void null();  // RESP2 "$-1", RESP3 "_"
  // RESP3 "=<len>\r\n<format>:<text>\r\n" (`format` is three characters, e.g. "txt"); RESP2 a
  // bulk string of `text`, as redis-server's addReplyVerbatim.
  void verbatim(std::string_view format, std::string_view text);
  void arrayHeader(size_t n);
  void mapHeader(size_t pairs);  // RESP2: a flat array of 2 * pairs
  void ok() { simple("OK"); }

  // A whole command as a multibulk request, for requests readthru sends upstream itself.
  static void command(std::string* out, std::initializer_list<std::string_view> argv);

 private:
  void header(char type, uint64_t n);
  std::string* out_;
  int protocol_;
};

}  // namespace readthru::resp
