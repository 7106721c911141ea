// WriteBehind's static helpers: the pending-state encoding, the queue's key names and the EVAL
// request that runs a client's write and queues its keys in one atomic step.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "proxy/key_template.h"
#include "proxy/write_behind.h"
#include "proxy/write_behind_batch.h"
#include "proxy/writer.h"

namespace readthru {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using namespace std::literals;

// The wrap script, byte for byte: Redis caches scripts by their SHA1, so a change to the text is a
// change to the wire format and should be deliberate.
constexpr std::string_view kWrapScript = R"lua(
local r = redis.pcall(unpack(ARGV))
if type(r) == 'table' and r.err then return r end
for i = 1, #KEYS, 3 do
  local k = KEYS[i + 2]
  local t = redis.call('TYPE', k)['ok']
  local state
  if t == 'string' then
    state = 's' .. redis.call('GET', k)
  elseif t == 'hash' then
    local h = redis.call('HGETALL', k)
    local parts = {'h'}
    for j = 1, #h do parts[#parts + 1] = #h[j] .. ':' .. h[j] end
    state = table.concat(parts)
  elseif t == 'none' then
    state = 'd'
  end
  if state then
    redis.call('HSET', KEYS[i + 1], k, state)
    redis.call('XADD', KEYS[i], '*', 'k', k)
  end
end
return r
)lua";

WriteState stringState(std::string value) {
  WriteState s;
  s.kind = WriteState::Kind::kString;
  s.value = std::move(value);
  return s;
}

WriteState hashState(Fields fields) {
  WriteState s;
  s.kind = WriteState::Kind::kHash;
  s.fields = std::move(fields);
  return s;
}

WriteState deleted() { return WriteState{}; }

// A behind writer without a backend: nothing here runs a statement.
Writer makeWriter(std::string name, std::string key) {
  WriterConfig c;
  c.name = std::move(name);
  c.where = "test.toml:1:1";
  c.key = std::move(key);
  c.backend = "main";
  c.mode = WriteMode::kBehind;
  c.upsert = "INSERT INTO kv VALUES (:id, :value)";
  c.del = "DELETE FROM kv WHERE k = :id";
  KeyTemplate tmpl;
  std::string error;
  REQUIRE_MESSAGE(KeyTemplate::parse(c.key, &tmpl, &error), error);
  return Writer(std::move(c), std::move(tmpl), nullptr, {":id", ":value"}, {":id"});
}

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

bool sameState(const WriteState& a, const WriteState& b) {
  return a.kind == b.kind && a.value == b.value && a.fields == b.fields;
}

TEST_CASE("write-behind state: each kind encodes as documented") {
  using WB = WriteBehind;
  CHECK(WB::encodeState(stringState("hello")) == "shello");
  CHECK(WB::encodeState(stringState("")) == "s");
  CHECK(WB::encodeState(deleted()) == "d");
  // A deleted state's leftovers are not encoded.
  WriteState d = stringState("ignored");
  d.kind = WriteState::Kind::kDeleted;
  d.fields = {{"f", "v"}};
  CHECK(WB::encodeState(d) == "d");
  CHECK(WB::encodeState(hashState({})) == "h");
  CHECK(WB::encodeState(hashState({{"name", "ada"}, {"email", ""}})) == "h4:name3:ada5:email0:");
  CHECK(WB::encodeState(hashState({{"", ""}})) == "h0:0:");
  // Lengths count bytes, digits and ':' in the data included.
  CHECK(WB::encodeState(hashState({{"1:2", "33:x"}})) == "h3:1:24:33:x");
  // A string's value is taken as is: no length, whatever it holds.
  CHECK(WB::encodeState(stringState("3:abc")) == "s3:abc");
  // A hash state's `value` is not encoded, nor a string state's fields.
  WriteState h = hashState({{"a", "b"}});
  h.value = "stray";
  CHECK(WB::encodeState(h) == "h1:a1:b");
  WriteState s = stringState("v");
  s.fields = {{"a", "b"}};
  CHECK(WB::encodeState(s) == "sv");
}

TEST_CASE("write-behind state: decode(encode(s)) gives s back, binary data included") {
  const std::string big(100000, '7');
  const std::vector<WriteState> states = {
      stringState("hello"),
      stringState(""),
      stringState("s"),
      stringState("d"),
      stringState("h1:a1:b"),
      stringState("\0\r\n\xff:12:"s),
      stringState(big),
      hashState({}),
      hashState({{"name", "ada"}}),
      hashState({{"name", "ada"}, {"email", "ada@example.com"}, {"age", "36"}}),
      hashState({{"", ""}}),
      hashState({{"", "v"}, {"f", ""}}),
      hashState({{"12:", ":34"}, {"5", "55555"}, {":", "::"}}),
      hashState({{"10", "1:a"}, {"2:x", "0:"}}),
      hashState({{"\0"s, "\0\0"s}, {"\xff\xfe", "\r\n"}}),
      hashState({{"big", big}, {big, "big"}}),
      deleted(),
  };
  for (const WriteState& s : states) {
    std::string encoded = WriteBehind::encodeState(s);
    CAPTURE(encoded.substr(0, 80));
    std::optional<WriteState> back = WriteBehind::decodeState(encoded);
    REQUIRE(back.has_value());
    CHECK(sameState(*back, s));
  }
}

TEST_CASE("write-behind state: decode of hand-written states") {
  auto decoded = WriteBehind::decodeState("h2:id1:7");
  REQUIRE(decoded);
  CHECK(decoded->kind == WriteState::Kind::kHash);
  CHECK(decoded->fields == Fields{{"id", "7"}});
  CHECK(decoded->value.empty());

  decoded = WriteBehind::decodeState("s");
  REQUIRE(decoded);
  CHECK(decoded->kind == WriteState::Kind::kString);
  CHECK(decoded->value.empty());

  // Everything after 's' is the value, 'd' and 'h' and lengths included.
  decoded = WriteBehind::decodeState("sd");
  REQUIRE(decoded);
  CHECK(decoded->kind == WriteState::Kind::kString);
  CHECK(decoded->value == "d");

  decoded = WriteBehind::decodeState("d");
  REQUIRE(decoded);
  CHECK(decoded->kind == WriteState::Kind::kDeleted);
  CHECK(decoded->value.empty());
  CHECK(decoded->fields.empty());

  decoded = WriteBehind::decodeState("h");
  REQUIRE(decoded);
  CHECK(decoded->kind == WriteState::Kind::kHash);
  CHECK(decoded->fields.empty());
}

TEST_CASE("write-behind state: malformed states decode to nothing") {
  for (std::string_view bad : {
           ""sv,
           "x"sv,
           "S1"sv,
           "D"sv,
           "H"sv,
           "dd"sv,  // 'd' stands alone
           "d1:a"sv,
           "h1:a"sv,        // a field without a value
           "h1:a1:b1:c"sv,  // three parts
           "h3:ab"sv,       // the length runs past the end
           "h1:a1:"sv,      // ditto, for the value
           "h1:a1"sv,       // no ':' after a length
           "h1a1:b"sv,      // no ':' at all where one must be
           "h:a1:b"sv,      // an empty length
           "h-1:a1:b"sv,    // a sign
           "h+1:a1:b"sv,
           "h 1:a1:b"sv,                    // a space
           "hx:a1:b"sv,                     // not a number
           "h1x:a1:b"sv,                    // trailing garbage in the length
           "h99999999999999999999999:a"sv,  // a length beyond size_t
           "h18446744073709551615:x"sv,     // SIZE_MAX
       }) {
    CAPTURE(bad);
    CHECK_FALSE(WriteBehind::decodeState(bad).has_value());
  }
  // A NUL byte where the kind goes.
  CHECK_FALSE(WriteBehind::decodeState("\0"sv).has_value());
  CHECK_FALSE(WriteBehind::decodeState("\0s"sv).has_value());
}

// The bounds check `colon + 1 + len > s.size()` wraps around for a length near SIZE_MAX: the
// length is accepted, the cursor moves *backwards* (into the length's own digits here) and the
// parse goes on from there. "h18446744073709551614:abcd" (SIZE_MAX - 1) decodes to the hash
// {"abcd": "abcd"} instead of nothing; with SIZE_MAX - 20 the cursor returns to the first length
// and decodeState never returns (an endless loop that keeps appending to a vector).
TEST_CASE("write-behind state: a length that wraps the bounds check is malformed") {
  std::optional<WriteState> decoded = WriteBehind::decodeState("h18446744073709551614:abcd");
  CHECK_MESSAGE(!decoded.has_value(),
                "decoded as " << (decoded ? WriteBehind::encodeState(*decoded) : std::string()));
}

TEST_CASE("write-behind state: the stream and the pending hashes are named after the writer") {
  Writer user = makeWriter("user", "user:{id}");
  CHECK(WriteBehind::streamKey(user) == "readthru:wb:user");
  CHECK(WriteBehind::pendingKey(user) == "readthru:wb:user:pending");
  Writer odd = makeWriter("a b:c", "x:{id}");
  CHECK(WriteBehind::streamKey(odd) == "readthru:wb:a b:c");
  CHECK(WriteBehind::pendingKey(odd) == "readthru:wb:a b:c:pending");
  CHECK(WriteBehind::flushingKey(user) == "readthru:wb:user:flushing");
}

TEST_CASE("write-behind state: wrap is one EVAL with a key triple per written key") {
  Writer user = makeWriter("user", "user:{id}");
  Writer session = makeWriter("session", "session:{id}");

  SUBCASE("one key") {
    WritePlan plan;
    plan.kind = WritePlan::Kind::kBehind;
    plan.items.push_back({&user, "user:1", stringState("v")});
    std::vector<std::string_view> argv = {"SET", "user:1", "v", "EX", "10"};
    std::string expected = "*11\r\n" + bulk("EVAL") + bulk(kWrapScript) + bulk("3") +
                           bulk("readthru:wb:user") + bulk("readthru:wb:user:pending") +
                           bulk("user:1") + bulk("SET") + bulk("user:1") + bulk("v") + bulk("EX") +
                           bulk("10");
    CHECK(WriteBehind::wrap(plan, argv) == expected);
  }

  SUBCASE("several writers' keys, in the plan's order; the command as the client sent it") {
    WritePlan plan;
    plan.kind = WritePlan::Kind::kBehind;
    plan.items.push_back({&user, "user:1", stringState("a")});
    plan.items.push_back({&session, "session:x", stringState("b")});
    plan.items.push_back({&user, "user:2", stringState("\r\n\0"s)});
    const std::string binary = "\r\n\0"s;
    std::vector<std::string_view> argv = {"mset",      "user:1", "a",      "plain", "p",
                                          "session:x", "b",      "user:2", binary};
    std::string expected =
        "*21\r\n" + bulk("EVAL") + bulk(kWrapScript) + bulk("9") + bulk("readthru:wb:user") +
        bulk("readthru:wb:user:pending") + bulk("user:1") + bulk("readthru:wb:session") +
        bulk("readthru:wb:session:pending") + bulk("session:x") + bulk("readthru:wb:user") +
        bulk("readthru:wb:user:pending") + bulk("user:2");
    for (std::string_view a : argv) expected += bulk(a);
    CHECK(WriteBehind::wrap(plan, argv) == expected);
  }

  SUBCASE("a hash write and a delete: the state is worked out by the script, not sent") {
    WritePlan plan;
    plan.kind = WritePlan::Kind::kBehind;
    plan.op = WritePlan::Op::kHset;
    plan.items.push_back({&user, "user:7", hashState({{"stale", "x"}})});
    plan.set_fields = {{"name", "ada"}};
    std::vector<std::string_view> argv = {"HSET", "user:7", "name", "ada"};
    std::string expected = "*10\r\n" + bulk("EVAL") + bulk(kWrapScript) + bulk("3") +
                           bulk("readthru:wb:user") + bulk("readthru:wb:user:pending") +
                           bulk("user:7") + bulk("HSET") + bulk("user:7") + bulk("name") +
                           bulk("ada");
    CHECK(WriteBehind::wrap(plan, argv) == expected);

    plan.op = WritePlan::Op::kDel;
    plan.items[0].state = deleted();
    argv = {"UNLINK", "user:7"};
    expected = "*8\r\n" + bulk("EVAL") + bulk(kWrapScript) + bulk("3") + bulk("readthru:wb:user") +
               bulk("readthru:wb:user:pending") + bulk("user:7") + bulk("UNLINK") + bulk("user:7");
    CHECK(WriteBehind::wrap(plan, argv) == expected);
  }

  SUBCASE("no key: numkeys 0") {
    WritePlan plan;
    std::vector<std::string_view> argv = {"SET", "plain", ""};
    std::string expected = "*6\r\n" + bulk("EVAL") + bulk(kWrapScript) + bulk("0") + bulk("SET") +
                           bulk("plain") + bulk("");
    CHECK(WriteBehind::wrap(plan, argv) == expected);
  }
}

}  // namespace
}  // namespace readthru

namespace readthru {
namespace {

std::string request(std::initializer_list<std::string_view> argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (std::string_view a : argv) out += bulk(a);
  return out;
}

TEST_CASE("write-behind batch: one HSET and one XADD per writer, in order of first write") {
  WriteBehindBatch::Closing closing;
  auto requests = [&closing] {
    std::vector<std::string> out;
    closing.requests([&out](std::string_view r) { out.emplace_back(r); });
    return out;
  };
  for (int reuse = 0; reuse < 2; ++reuse) {
    closing.add("user", "user:1", stringState("a"));
    closing.add("cart", "cart:9", deleted());
    closing.add("user", "user:2", deleted());
    closing.add("user", "user:1", stringState("b"));  // again: the later state wins in the HSET
    CHECK(closing.writes() == 4);
    std::vector<std::string> expected = {
        request(
            {"HSET", "readthru:wb:user:pending", "user:1", "sa", "user:2", "d", "user:1", "sb"}),
        request({"XADD", "readthru:wb:user", "*", "ks", "6:user:16:user:26:user:1"}),
        request({"HSET", "readthru:wb:cart:pending", "cart:9", "d"}),
        request({"XADD", "readthru:wb:cart", "*", "ks", "6:cart:9"}),
    };
    CHECK(requests() == expected);
    closing.clear();
    CHECK(closing.writes() == 0);
    CHECK(requests().empty());
  }
  // A cleared Closing reused by other writers: each part is named for its new writer.
  closing.add("cart", "cart:1", hashState({{"n", "2"}}));
  std::vector<std::string> expected = {
      request({"HSET", "readthru:wb:cart:pending", "cart:1", "h1:n1:2"}),
      request({"XADD", "readthru:wb:cart", "*", "ks", "6:cart:1"}),
  };
  CHECK(requests() == expected);
}

TEST_CASE("write-behind stream entries: a key per field k, or a key list in field ks") {
  auto keys = [](std::string_view field, std::string_view value, bool* ok = nullptr) {
    std::vector<std::string> out;
    bool good =
        WriteBehind::forEachKey(field, value, [&out](std::string_view k) { out.emplace_back(k); });
    if (ok != nullptr) *ok = good;
    return out;
  };
  CHECK(keys("k", "user:1") == std::vector<std::string>{"user:1"});
  CHECK(keys("k", "") == std::vector<std::string>{""});
  CHECK(keys("other", "user:1").empty());
  std::string list;
  for (std::string_view k : {"user:1", "", "a:b:c", "x\r\n9:y"})
    WriteBehind::appendKeyToList(k, &list);
  CHECK(list == "6:user:10:5:a:b:c6:x\r\n9:y");
  CHECK(keys("ks", list) == std::vector<std::string>{"user:1", "", "a:b:c", "x\r\n9:y"});
  CHECK(keys("ks", "").empty());
  for (std::string_view bad : {"6:user", "x:abc", "3", "-1:a", "2:ab3:cd"}) {
    bool ok = true;
    keys("ks", bad, &ok);
    CHECK_MESSAGE(!ok, bad);
  }
}

TEST_CASE("write-behind batch: only writes their arguments decide join one") {
  Writer user = makeWriter("user", "user:{id}");
  WritePlan plan;
  plan.kind = WritePlan::Kind::kBehind;
  plan.items.push_back({&user, "user:1", stringState("a")});
  std::vector<std::string_view> set = {"SET", "user:1", "a", "EX", "5"};
  CHECK(WriteBehind::batchable(plan, set));
  std::vector<std::string_view> set_get = {"set", "user:1", "a", "get"};
  CHECK_FALSE(WriteBehind::batchable(plan, set_get));
  plan.nx = true;
  CHECK_FALSE(WriteBehind::batchable(plan, set));
  plan.nx = false;
  plan.xx = true;
  CHECK_FALSE(WriteBehind::batchable(plan, set));
  plan.xx = false;
  plan.op = WritePlan::Op::kHset;
  std::vector<std::string_view> hset = {"HSET", "user:1", "f", "v"};
  CHECK_FALSE(WriteBehind::batchable(plan, hset));
  plan.op = WritePlan::Op::kHdel;
  CHECK_FALSE(WriteBehind::batchable(plan, hset));
}

}  // namespace
}  // namespace readthru
