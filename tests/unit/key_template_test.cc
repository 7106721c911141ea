#include "proxy/key_template.h"

#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

// Counting allocations needs a global operator new, which replaces it for the whole test binary.
// Sanitizer builds keep their own (it checks new/delete pairing), and skip the allocation test.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define READTHRU_KT_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define READTHRU_KT_SANITIZED 1
#endif

#ifndef READTHRU_KT_SANITIZED
namespace {
// Allocations by this thread; constant-initialized, so safe before main.
thread_local size_t allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace readthru {
namespace {

using namespace std::string_view_literals;

KeyTemplate parsed(std::string_view text) {
  KeyTemplate t;
  std::string error;
  REQUIRE_MESSAGE(KeyTemplate::parse(text, &t, &error), error);
  return t;
}

std::string parseError(std::string_view text) {
  KeyTemplate t;
  std::string error;
  CHECK_FALSE(KeyTemplate::parse(text, &t, &error));
  return error;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Whether `t` matches `key`; fills *out with owned copies of the captures. Also checks that
// match() agrees with itself without a captures vector and honours its contract on the vector.
bool matches(const KeyTemplate& t, std::string_view key, Pairs* out = nullptr) {
  KeyTemplate::Captures captures;
  const bool matched = t.match(key, &captures);
  CHECK(t.match(key, nullptr) == matched);
  if (!matched) CHECK(captures.empty());
  if (matched) CHECK(captures.size() == t.captureNames().size());
  if (out != nullptr) {
    out->clear();
    for (auto [name, value] : captures) out->emplace_back(name, value);
  }
  return matched;
}

TEST_CASE("key template: parse keeps the text, names and types") {
  KeyTemplate t = parsed("order:{region}:{id:int}");
  CHECK(t.text() == "order:{region}:{id:int}");
  CHECK(t.captureNames() == std::vector<std::string>{"region", "id"});
  CHECK(t.captureType(0) == CaptureType::kString);
  CHECK(t.captureType(1) == CaptureType::kInt);
  CHECK(t.prefix() == "order:");

  KeyTemplate fixed = parsed("config:global");
  CHECK(fixed.captureNames().empty());
  CHECK(fixed.prefix() == "config:global");

  CHECK(parsed("{id}").prefix().empty());
  CHECK(parsed("_a1:{_B2}").captureNames() == std::vector<std::string>{"_B2"});
}

TEST_CASE("key template: a string capture is one non-empty segment") {
  KeyTemplate t = parsed("user:{id}");
  Pairs got;
  CHECK(matches(t, "user:42", &got));
  CHECK(got == Pairs{{"id", "42"}});
  CHECK(matches(t, "user:alice@example.com", &got));
  CHECK(got == Pairs{{"id", "alice@example.com"}});
  CHECK(matches(t, "user:x"));

  CHECK_FALSE(matches(t, ""));
  CHECK_FALSE(matches(t, "user"));
  CHECK_FALSE(matches(t, "user:"));            // empty capture
  CHECK_FALSE(matches(t, "user:42:profile"));  // ':' inside a capture
  CHECK_FALSE(matches(t, "user::"));           // ':' inside a capture
  CHECK_FALSE(matches(t, "users:42"));         // prefix
  CHECK_FALSE(matches(t, "USER:42"));          // prefix is case-sensitive
  CHECK_FALSE(matches(t, "xuser:42"));         // prefix is anchored
  CHECK_FALSE(matches(t, "product:42"));

  KeyTemplate profile = parsed("user:{id}:profile");
  CHECK(matches(profile, "user:42:profile", &got));
  CHECK(got == Pairs{{"id", "42"}});
  CHECK_FALSE(matches(profile, "user:42"));
  CHECK_FALSE(matches(profile, "user::profile"));
  CHECK_FALSE(matches(profile, "user:4:2:profile"));
  CHECK_FALSE(matches(profile, "user:42:profilex"));
  CHECK_FALSE(matches(profile, "user:42:profile:profile"));
}

TEST_CASE("key template: a capture ends at the first occurrence of the literal after it") {
  Pairs got;
  KeyTemplate dotted = parsed("{a}.{b}");
  CHECK(matches(dotted, "x.y.z", &got));
  CHECK(got == Pairs{{"a", "x"}, {"b", "y.z"}});
  CHECK(matches(dotted, "x..", &got));
  CHECK(got == Pairs{{"a", "x"}, {"b", "."}});
  CHECK_FALSE(matches(dotted, ".y"));  // "a" would be empty
  CHECK_FALSE(matches(dotted, "x."));  // "b" would be empty
  CHECK_FALSE(matches(dotted, "xy"));
  CHECK_FALSE(matches(dotted, "x:1.y"));  // ':' inside "a"
  CHECK_FALSE(matches(dotted, "x.y:1"));  // ':' inside "b"

  KeyTemplate json = parsed("item:{id}.json");
  CHECK(matches(json, "item:a.b.json", &got));
  CHECK(got == Pairs{{"id", "a.b"}});
  CHECK_FALSE(matches(json, "item:.json"));
  CHECK_FALSE(matches(json, "item:a.json.json"));  // "id" ends at the first ".json"

  // No backtracking: "a" ends at the first "ab", and the second "ab" is left over.
  KeyTemplate no_backtrack = parsed("{a}ab");
  CHECK(matches(no_backtrack, "xab", &got));
  CHECK(got == Pairs{{"a", "x"}});
  CHECK_FALSE(matches(no_backtrack, "xabab"));

  // The following literal may itself contain ':'; the capture still cannot.
  KeyTemplate dash = parsed("{a}-x:{b}");
  CHECK(matches(dash, "p-x:q", &got));
  CHECK(got == Pairs{{"a", "p"}, {"b", "q"}});
  CHECK(matches(dash, "p-y-x:q", &got));
  CHECK(got == Pairs{{"a", "p-y"}, {"b", "q"}});
  CHECK_FALSE(matches(dash, "p:-x:q"));
  CHECK_FALSE(matches(dash, "-x:q"));
}

TEST_CASE("key template: int captures take canonical non-negative int64 only") {
  KeyTemplate t = parsed("product:{id:int}");
  Pairs got;
  CHECK(matches(t, "product:7", &got));
  CHECK(got == Pairs{{"id", "7"}});
  CHECK(matches(t, "product:0"));
  CHECK(matches(t, "product:10"));
  CHECK(matches(t, "product:9223372036854775807", &got));
  CHECK(got == Pairs{{"id", "9223372036854775807"}});
  CHECK(matches(t, "product:1000000000000000000"));  // 19 digits, below the maximum

  for (std::string_view key : {
           "product:"sv,
           "product:9223372036854775808"sv,   // int64 max + 1
           "product:9999999999999999999"sv,   // 19 digits, too large
           "product:10000000000000000000"sv,  // 20 digits
           "product:007"sv,                   // leading zero: not canonical
           "product:00"sv,
           "product:-1"sv,
           "product:+1"sv,
           "product: 1"sv,
           "product:1 "sv,
           "product:1e3"sv,
           "product:0x1f"sv,
           "product:1.5"sv,
           "product:\xd9\xa1"sv,  // ARABIC-INDIC DIGIT ONE: not ASCII
           "product:7:reviews"sv,
       }) {
    CAPTURE(key);
    CHECK_FALSE(matches(t, key));
  }

  KeyTemplate middle = parsed("cart:{id:int}:items");
  CHECK(matches(middle, "cart:12:items", &got));
  CHECK(got == Pairs{{"id", "12"}});
  CHECK_FALSE(matches(middle, "cart:x:items"));

  // The extent rule comes first, then the type check: "3.4" is not an int.
  KeyTemplate page = parsed("page:{n:int}.html");
  CHECK(matches(page, "page:3.html", &got));
  CHECK(got == Pairs{{"n", "3"}});
  CHECK_FALSE(matches(page, "page:3.4.html"));
}

TEST_CASE("key template: several captures") {
  KeyTemplate t = parsed("order:{region}:{id:int}");
  Pairs got;
  CHECK(matches(t, "order:eu-west-1:123", &got));
  CHECK(got == Pairs{{"region", "eu-west-1"}, {"id", "123"}});
  CHECK_FALSE(matches(t, "order:eu:abc"));
  CHECK_FALSE(matches(t, "order:eu:"));
  CHECK_FALSE(matches(t, "order::1"));
  CHECK_FALSE(matches(t, "order:eu:1:2"));
  CHECK_FALSE(matches(t, "order:eu"));

  KeyTemplate three = parsed("t:{a}:{b}:{c:int}:end");
  CHECK(matches(three, "t:x:y:3:end", &got));
  CHECK(got == Pairs{{"a", "x"}, {"b", "y"}, {"c", "3"}});
  CHECK_FALSE(matches(three, "t:x:y:3:en"));
  CHECK_FALSE(matches(three, "t:x:y:z:3:end"));
}

TEST_CASE("key template: escaped braces and Redis Cluster hash tags") {
  KeyTemplate tag = parsed("{{user:{id}}}:cart");
  CHECK(tag.prefix() == "{user:");
  CHECK(tag.text() == "{{user:{id}}}:cart");
  Pairs got;
  CHECK(matches(tag, "{user:42}:cart", &got));
  CHECK(got == Pairs{{"id", "42"}});
  CHECK_FALSE(matches(tag, "{user:4:2}:cart"));
  CHECK_FALSE(matches(tag, "user:42:cart"));

  KeyTemplate fixed = parsed("a}}b{{c");
  CHECK(fixed.captureNames().empty());
  CHECK(fixed.prefix() == "a}b{c");
  CHECK(matches(fixed, "a}b{c"));
  CHECK_FALSE(matches(fixed, "a}}b{{c"));

  // An escaped brace is literal text, so it separates two captures.
  KeyTemplate separated = parsed("x:{a}{{{b}");
  CHECK(matches(separated, "x:p{q", &got));
  CHECK(got == Pairs{{"a", "p"}, {"b", "q"}});
}

TEST_CASE("key template: a template without captures matches exactly its text") {
  KeyTemplate t = parsed("config:global");
  KeyTemplate::Captures captures{{"stale", "entry"}};
  CHECK(t.match("config:global", &captures));
  CHECK(captures.empty());
  CHECK_FALSE(matches(t, "config:globals"));
  CHECK_FALSE(matches(t, "config:globa"));
  CHECK_FALSE(matches(t, ""));
}

TEST_CASE("key template: a default-constructed template matches nothing") {
  KeyTemplate t;
  CHECK(t.text().empty());
  CHECK(t.captureNames().empty());
  CHECK_FALSE(t.match("", nullptr));
  CHECK_FALSE(t.match("user:1", nullptr));
}

TEST_CASE("key template: SQL-looking keys are captured verbatim") {
  KeyTemplate t = parsed("user:{id}");
  for (std::string_view value : {
           "1' OR '1'='1"sv,
           "1; DROP TABLE users; --"sv,
           "\"); DELETE FROM users; --"sv,
           "1 UNION SELECT password FROM users"sv,
           "%' AND 1=1 /*"sv,
           "$1"sv,
           "?"sv,
       }) {
    CAPTURE(value);
    std::string key = "user:" + std::string(value);
    Pairs got;
    CHECK(matches(t, key, &got));
    CHECK(got == Pairs{{"id", std::string(value)}});
  }

  KeyTemplate ints = parsed("product:{id:int}");
  CHECK_FALSE(matches(ints, "product:1 OR 1=1"));
  CHECK_FALSE(matches(ints, "product:1;DROP TABLE products"));
  CHECK_FALSE(matches(ints, "product:1--"));
}

TEST_CASE("key template: binary keys") {
  KeyTemplate user = parsed("user:{id}");
  Pairs got;
  CHECK(matches(user, "user:a\0b"sv, &got));
  CHECK(got == Pairs{{"id", std::string("a\0b", 3)}});
  CHECK(matches(user, "user:\0"sv, &got));
  CHECK(got == Pairs{{"id", std::string(1, '\0')}});
  CHECK(matches(user, "user:\xff\xfe\x80"sv, &got));
  CHECK(got == Pairs{{"id", "\xff\xfe\x80"}});
  CHECK_FALSE(matches(user, "user\0:1"sv));

  KeyTemplate session = parsed("session:{token}");
  CHECK(matches(session, "session:ab\r\ncd"sv, &got));
  CHECK(got == Pairs{{"token", "ab\r\ncd"}});
  CHECK(matches(session, "session:\r\n"sv, &got));
  CHECK(got == Pairs{{"token", "\r\n"}});

  KeyTemplate product = parsed("product:{id:int}");
  CHECK_FALSE(matches(product, "product:4\0"sv));
  CHECK_FALSE(matches(product, "product:\0"sv));
  CHECK_FALSE(matches(product, "product:4\r\n"sv));
  CHECK_FALSE(matches(product, "product:\r\n4"sv));

  // Literal text may hold any byte too.
  KeyTemplate nul = parsed("k\0:{id}"sv);
  CHECK(nul.prefix() == "k\0:"sv);
  CHECK(matches(nul, "k\0:1"sv, &got));
  CHECK(got == Pairs{{"id", "1"}});
  CHECK_FALSE(matches(nul, "k:1"));
}

TEST_CASE("key template: capture views point into the template and the key") {
  KeyTemplate t = parsed("order:{region}:{id:int}");
  std::string key = "order:eu:9";
  KeyTemplate::Captures captures;
  REQUIRE(t.match(key, &captures));
  REQUIRE(captures.size() == 2);
  CHECK(captures[0].first.data() == t.captureNames()[0].data());
  CHECK(captures[1].first.data() == t.captureNames()[1].data());
  CHECK(captures[0].second.data() == key.data() + 6);
  CHECK(captures[1].second.data() == key.data() + 9);

  // One vector, reused: each match replaces what the previous one left, a failure leaves it empty.
  REQUIRE(t.match("order:us:1", &captures));
  CHECK(captures.size() == 2);
  CHECK_FALSE(t.match("order:us:x", &captures));
  CHECK(captures.empty());
  CHECK_FALSE(t.match("other", &captures));
  CHECK(captures.empty());
}

TEST_CASE("key template: copies and moves keep working") {
  KeyTemplate copy;
  KeyTemplate moved;
  {
    // Short strings: views into small-string buffers would dangle after a copy or move.
    KeyTemplate original = parsed("{{t}}:{a}:{b:int}");
    copy = original;
    KeyTemplate temporary = original;
    moved = std::move(temporary);
  }
  for (const KeyTemplate* t : {&copy, &moved}) {
    KeyTemplate::Captures captures;
    REQUIRE(t->match("{t}:x:5", &captures));
    REQUIRE(captures.size() == 2);
    CHECK(captures[0].first == "a");
    CHECK(captures[0].first.data() == t->captureNames()[0].data());
    CHECK(captures[1].second == "5");
    CHECK(t->text() == "{{t}}:{a}:{b:int}");
    CHECK(t->prefix() == "{t}:");
  }
}

TEST_CASE("key template: parse errors") {
  CHECK(parseError("") == "empty key template");
  CHECK(parseError("user:{id") == "unclosed '{' at offset 5 (write '{{' for a literal '{')");
  CHECK(parseError("user:{") == "unclosed '{' at offset 5 (write '{{' for a literal '{')");
  CHECK(parseError("user:id}") == "unmatched '}' at offset 7 (write '}}' for a literal '}')");
  CHECK(parseError("}") == "unmatched '}' at offset 0 (write '}}' for a literal '}')");
  CHECK(parseError("{a}}") == "unmatched '}' at offset 3 (write '}}' for a literal '}')");
  CHECK(parseError("user:{a{b}}") == "'{' at offset 7 inside the capture opened at offset 5");
  CHECK(parseError("user:{}") == "empty capture name at offset 5");
  CHECK(parseError("user:{:int}") == "empty capture name at offset 5");
  CHECK(parseError("user:{1d}") ==
        "invalid capture name '1d' at offset 5 (letters, digits and '_', not starting with a "
        "digit)");
  CHECK(parseError("user:{a-b}").starts_with("invalid capture name 'a-b' at offset 5 "));
  CHECK(parseError("user:{a b}").starts_with("invalid capture name 'a b' at offset 5 "));
  CHECK(parseError("user:{a\x01\n}").starts_with("invalid capture name 'a\\x01\\x0a' "));
  CHECK(parseError("user:{id:}") ==
        "missing type after 'id:' at offset 5 (the only type is 'int')");
  CHECK(parseError("user:{id:uint}") ==
        "unknown type 'uint' for capture 'id' at offset 5 (the only type is 'int')");
  CHECK(parseError("user:{id:INT}") ==
        "unknown type 'INT' for capture 'id' at offset 5 (the only type is 'int')");
  CHECK(parseError("user:{id:int:x}") ==
        "unknown type 'int:x' for capture 'id' at offset 5 (the only type is 'int')");
  CHECK(parseError("{id}:{id}") == "duplicate capture name 'id' at offset 5");
  CHECK(parseError("{id:int}:{id}") == "duplicate capture name 'id' at offset 9");
  CHECK(parseError("{a}{b}") ==
        "captures 'a' and 'b' at offset 3 have no literal text between them");
  CHECK(parseError("x:{a}{b:int}:y") ==
        "captures 'a' and 'b' at offset 5 have no literal text between them");
}

TEST_CASE("key template: a failed parse leaves the output alone") {
  KeyTemplate t = parsed("user:{id}");
  std::string error = "previous";
  CHECK_FALSE(KeyTemplate::parse("user:{id", &t, &error));
  CHECK(error.starts_with("unclosed"));
  CHECK(t.text() == "user:{id}");
  CHECK(t.match("user:1", nullptr));
}

#ifndef READTHRU_KT_SANITIZED
TEST_CASE("key template: matching does not allocate") {
  KeyTemplate user = parsed("user:{id}");
  KeyTemplate order = parsed("order:{region}:{id:int}:v{version:int}");
  KeyTemplate::Captures captures;
  captures.reserve(4);
  const std::string product_key = "product:42";
  const std::string long_key(4096, 'x');
  const std::string order_key = "order:eu:42:v3";

  // The counter sees a call that cannot be elided.
  const size_t probe = allocations;
  ::operator delete(::operator new(16));
  REQUIRE(allocations == probe + 1);

  const size_t before = allocations;
  const bool product = user.match(product_key, &captures);  // another prefix
  const bool longer = user.match(long_key, &captures);
  const bool nested = user.match("user:42:profile", &captures);
  const bool bad_int = order.match("order:eu:42:vx", &captures);
  const bool hit = order.match(order_key, &captures);  // fits the reserved capacity
  const size_t after = allocations;

  CHECK(after == before);
  CHECK_FALSE(product);
  CHECK_FALSE(longer);
  CHECK_FALSE(nested);
  CHECK_FALSE(bad_int);
  CHECK(hit);
  CHECK(captures.size() == 3);
}
#endif

}  // namespace
}  // namespace readthru
