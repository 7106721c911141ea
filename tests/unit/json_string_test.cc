#include "proxy/json_string.h"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace readthru {
namespace {

using namespace std::string_literals;

std::string json(std::string_view s) {
  std::string out;
  appendJsonString(s, &out);
  return out;
}

TEST_CASE("json string: quotes, backslashes and control characters are escaped") {
  CHECK(json("") == R"("")");
  CHECK(json("plain text") == R"("plain text")");
  CHECK(json(R"(say "hi" \ bye)") == R"("say \"hi\" \\ bye")");
  CHECK(json("a\nb\rc\td") == R"("a\nb\rc\td")");
  CHECK(json("\b\f\x01\x1f\x00"s) == R"("\u0008\u000c\u0001\u001f\u0000")");
  // DEL and '/' need no escape in JSON.
  CHECK(json("\x7f/") == "\"\x7f/\"");
}

TEST_CASE("json string: valid UTF-8 passes through as is") {
  for (std::string_view s : {"caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf",
                             "\xee\x80\x80", "\xf4\x8f\xbf\xbf", "\xc2\x80"}) {
    CAPTURE(s);
    CHECK(json(s) == "\"" + std::string(s) + "\"");
  }
}

TEST_CASE("json string: bytes that are not UTF-8 become U+FFFD, one per bad byte") {
  struct Case {
    std::string in;
    std::string_view out;
  };
  for (const Case& c : {
           Case{"\x80", R"("\ufffd")"},                                // a lone continuation byte
           Case{"a\xffz", R"("a\ufffdz")"},                            // never valid
           Case{"\xc3", R"("\ufffd")"},                                // cut short at the end
           Case{"\xc3z", R"("\ufffdz")"},                              // cut short by an ASCII byte
           Case{"\xc0\x80", R"("\ufffd\ufffd")"},                      // overlong NUL
           Case{"\xe0\x80\x80", R"("\ufffd\ufffd\ufffd")"},            // overlong 3-byte form
           Case{"\xed\xa0\x80", R"("\ufffd\ufffd\ufffd")"},            // a surrogate (U+D800)
           Case{"\xf4\x90\x80\x80", R"("\ufffd\ufffd\ufffd\ufffd")"},  // past U+10FFFF
           Case{"\xf5\x80", R"("\ufffd\ufffd")"},
           Case{"\xe2\x82\xac\xe2\x82", "\"\xe2\x82\xac\\ufffd\\ufffd\""},  // good, then cut short
       }) {
    CAPTURE(c.in);
    CHECK(json(c.in) == c.out);
  }
}

TEST_CASE("json string: appends to what is there") {
  std::string out = "{\"k\":";
  appendJsonString("v", &out);
  CHECK(out == R"({"k":"v")");
}

}  // namespace
}  // namespace readthru
