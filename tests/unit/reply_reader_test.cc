#include "resp/reply_reader.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace readthru::resp {
namespace {

// An XREADGROUP reply (RESP2): [[stream, [[id, [field, value, ...]], ...]]].
constexpr std::string_view kStreamRead =
    "*1\r\n*2\r\n$6\r\nstream\r\n*2\r\n"
    "*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\nk\r\n$6\r\nuser:1\r\n$1\r\nk\r\n$2\r\na\n\r\n"
    "*2\r\n$3\r\n2-0\r\n*-1\r\n";

TEST_CASE("reply reader: a nested stream read, element by element") {
  ReplyReader r(kStreamRead);
  int64_t n = 0;
  std::string_view s;
  REQUIRE(r.array(&n));
  CHECK(n == 1);
  REQUIRE(r.array(&n));
  CHECK(n == 2);
  REQUIRE(r.bulk(&s));
  CHECK(s == "stream");
  REQUIRE(r.array(&n));
  CHECK(n == 2);
  REQUIRE(r.array(&n));
  REQUIRE(r.bulk(&s));
  CHECK(s == "1-0");
  REQUIRE(r.array(&n));
  CHECK(n == 4);
  std::vector<std::string> fields;
  for (int64_t i = 0; i < n; ++i) {
    REQUIRE(r.bulk(&s));
    fields.emplace_back(s);
  }
  CHECK(fields == std::vector<std::string>{"k", "user:1", "k", "a\n"});  // binary-safe
  REQUIRE(r.array(&n));
  REQUIRE(r.bulk(&s));
  CHECK(s == "2-0");
  CHECK(r.nil());  // a deleted entry's fields
  CHECK(r.atEnd());
}

TEST_CASE("reply reader: nils and skipping") {
  ReplyReader nil_bulk("$-1\r\n");
  std::string_view s = "x";
  bool is_nil = false;
  CHECK(nil_bulk.bulk(&s, &is_nil));
  CHECK(is_nil);
  CHECK(s.empty());
  CHECK(nil_bulk.atEnd());

  ReplyReader nil_not_wanted("$-1\r\n");
  CHECK_FALSE(nil_not_wanted.bulk(&s));
  CHECK_FALSE(nil_not_wanted.ok());

  ReplyReader nil_array("*-1\r\n");
  int64_t n = 0;
  CHECK(nil_array.array(&n));
  CHECK(n == -1);

  ReplyReader not_nil("$1\r\na\r\n");
  CHECK_FALSE(not_nil.nil());
  CHECK(not_nil.ok());  // asking is not failing
  CHECK(not_nil.bulk(&s));

  CHECK_FALSE(ReplyReader("-NOGROUP x\r\n").array(&n));  // an error is not the reply asked for

  ReplyReader all(kStreamRead);
  CHECK(all.skip());
  CHECK(all.atEnd());
  ReplyReader scalars("+OK\r\n:12\r\n-ERR x\r\n$-1\r\n*0\r\n");
  for (int i = 0; i < 5; ++i) CHECK(scalars.skip());
  CHECK(scalars.atEnd());
}

TEST_CASE("reply reader: a reply of another shape, or cut short, fails and stays failed") {
  int64_t n = 0;
  std::string_view s;
  ReplyReader wrong_kind("$1\r\na\r\n");
  CHECK_FALSE(wrong_kind.array(&n));
  CHECK_FALSE(wrong_kind.bulk(&s));  // failed readers read nothing more
  CHECK_FALSE(wrong_kind.ok());
  CHECK_FALSE(wrong_kind.atEnd());

  // Every prefix of a valid reply is refused somewhere along the way.
  std::string whole(kStreamRead);
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    ReplyReader r(std::string_view(whole).substr(0, cut));
    CHECK_FALSE((r.skip() && r.atEnd()));
  }
  CHECK_FALSE(ReplyReader("$3\r\nab\r\n").bulk(&s));  // a length beyond the data
  CHECK_FALSE(ReplyReader("$2\r\nabc\r\n").skip());   // no CRLF after the length's bytes
  CHECK_FALSE(ReplyReader("*x\r\n").array(&n));
  CHECK_FALSE(ReplyReader("*-2\r\n").array(&n));
}

}  // namespace
}  // namespace readthru::resp
