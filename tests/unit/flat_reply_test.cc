#include "resp/flat_reply.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace readthru::resp {
namespace {

std::vector<std::string> elements(std::string_view reply) {
  std::vector<std::pair<size_t, size_t>> spans;
  std::vector<std::string> out;
  if (!splitFlatReply(reply, &spans)) return {"<refused>"};
  for (auto [off, len] : spans) out.emplace_back(reply.substr(off, len));
  return out;
}

TEST_CASE("flat reply: MGET's bulk strings and nils, RESP2 and RESP3") {
  CHECK(elements("*3\r\n$3\r\nabc\r\n$-1\r\n_\r\n") ==
        std::vector<std::string>{"$3\r\nabc\r\n", "$-1\r\n", "_\r\n"});
  CHECK(elements("*0\r\n").empty());
  CHECK(elements("%1\r\n$1\r\nf\r\n$1\r\nv\r\n") ==
        std::vector<std::string>{"$1\r\nf\r\n", "$1\r\nv\r\n"});
  CHECK(elements("*1\r\n$4\r\na\r\nb\r\n") == std::vector<std::string>{"$4\r\na\r\nb\r\n"});
}

TEST_CASE("flat reply: EXEC's simple strings, errors, integers and RESP3 scalars") {
  CHECK(elements("*4\r\n+OK\r\n-ERR no\r\n:12\r\n$5\r\n1-0\r\n\r\n") ==
        std::vector<std::string>{"+OK\r\n", "-ERR no\r\n", ":12\r\n", "$5\r\n1-0\r\n\r\n"});
  CHECK(
      elements("*4\r\n#t\r\n,1.5\r\n(12345678901234567890\r\n!3\r\nERR\r\n") ==
      std::vector<std::string>{"#t\r\n", ",1.5\r\n", "(12345678901234567890\r\n", "!3\r\nERR\r\n"});
}

TEST_CASE("flat reply: refuses what is not exactly one flat aggregate") {
  CHECK(elements("-EXECABORT Transaction discarded\r\n") == std::vector<std::string>{"<refused>"});
  CHECK(elements("*1\r\n*1\r\n+OK\r\n") == std::vector<std::string>{"<refused>"});
  CHECK(elements("*2\r\n+OK\r\n") == std::vector<std::string>{"<refused>"});
  CHECK(elements("*1\r\n+OK\r\n+extra\r\n") == std::vector<std::string>{"<refused>"});
  CHECK(elements("*1\r\n$5\r\nab\r\n") == std::vector<std::string>{"<refused>"});
  CHECK(elements("*1\r\n+OK") == std::vector<std::string>{"<refused>"});
}

}  // namespace
}  // namespace readthru::resp
