#include "proxy/loader.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

namespace readthru {
namespace {

using backends::SqlParam;
using backends::SqlResult;
using backends::SqlValue;
using Fields = std::vector<std::pair<std::string, std::string>>;
using namespace std::string_literals;

// The hash fill script, byte for byte: Redis caches scripts by their SHA1, so a change to the
// text is a change to the wire format and should be deliberate.
constexpr std::string_view kHashFillScript =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) "
    "if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return 1";

SqlValue null() { return SqlValue{}; }
SqlValue integer(int64_t n) { return SqlValue{SqlValue::Type::kInteger, n, 0, {}}; }
SqlValue real(double d) { return SqlValue{SqlValue::Type::kReal, 0, d, {}}; }
SqlValue text(std::string s) { return SqlValue{SqlValue::Type::kText, 0, 0, std::move(s)}; }
SqlValue blob(std::string s) { return SqlValue{SqlValue::Type::kBlob, 0, 0, std::move(s)}; }

LoaderConfig loaderConfig(std::string key, LoaderType type) {
  LoaderConfig c;
  c.name = "user";
  c.where = "test.toml:1:1";
  c.key = std::move(key);
  c.backend = "main";
  c.query = "SELECT * FROM users WHERE id = :id";
  c.type = type;
  c.ttl_ms = 600000;
  c.timeout_ms = 750;
  return c;
}

// A loader without a backend: nothing here runs a query.
Loader makeLoader(LoaderConfig config, const std::vector<std::string>& params = {":id"}) {
  KeyTemplate tmpl;
  std::string error;
  REQUIRE_MESSAGE(KeyTemplate::parse(config.key, &tmpl, &error), error);
  return Loader(std::move(config), std::move(tmpl), nullptr, params);
}

SqlResult rows(std::vector<std::string> columns, std::vector<std::vector<SqlValue>> rows) {
  SqlResult r;
  r.ok = true;
  r.columns = std::move(columns);
  r.rows = std::move(rows);
  return r;
}

SqlResult failure(std::string error, bool timed_out = false) {
  SqlResult r;
  r.ok = false;
  r.timed_out = timed_out;
  r.error = std::move(error);
  return r;
}

// One row of every type, as SqliteBackend returns it for the users table of the sqlite tests.
SqlResult everyType() {
  return rows({"id", "name", "score", "avatar", "note"},
              {{integer(1), text("ada"), real(0.1), blob("\x00\xff\x00\x10"s), null()}});
}

TEST_CASE("loader: accessors reflect the config") {
  Loader l = makeLoader(loaderConfig("user:{id:int}", LoaderType::kHash));
  CHECK(l.name() == "user");
  CHECK(l.isHash());
  CHECK(l.backend() == nullptr);
  CHECK(l.keyTemplate().text() == "user:{id:int}");
  CHECK(l.config().ttl_ms == 600000);
  KeyTemplate::Captures scratch;
  CHECK(l.match("user:42", &scratch));
  CHECK_FALSE(l.match("user:042", &scratch));
  CHECK_FALSE(l.match("user:42:x", &scratch));
  CHECK_FALSE(makeLoader(loaderConfig("user:{id}", LoaderType::kJson)).isHash());
  CHECK_FALSE(makeLoader(loaderConfig("user:{id}", LoaderType::kString)).isHash());
}

TEST_CASE("loader: query binds the key's captures by name, integers as integers") {
  LoaderConfig c = loaderConfig("order:{region}:{id:int}", LoaderType::kJson);
  c.query = "SELECT * FROM orders WHERE id = $id AND region = :region";
  // Parameters keep the backend's order and spelling; each finds its capture by bare name.
  Loader l = makeLoader(c, {"$id", ":region"});
  backends::SqlQuery q = l.query("order:eu-west:42");
  CHECK(q.sql == c.query);
  CHECK(q.timeout_ms == 750);
  CHECK(q.max_rows == 1);  // a second row is an error, not silently ignored
  REQUIRE(q.params.size() == 2);
  CHECK(q.params[0].name == "$id");
  CHECK(q.params[0].value == "42");
  CHECK(q.params[0].kind == SqlParam::Kind::kInteger);
  CHECK(q.params[1].name == ":region");
  CHECK(q.params[1].value == "eu-west");
  CHECK(q.params[1].kind == SqlParam::Kind::kText);

  // A string capture is the key's bytes verbatim: quotes, NULs, spaces.
  std::string odd = "it's \"x\"\0 ; DROP TABLE orders"s;
  q = l.query("order:" + odd + ":9223372036854775807");
  REQUIRE(q.params.size() == 2);
  CHECK(q.params[0].value == "9223372036854775807");
  CHECK(q.params[1].value == odd);
  CHECK(q.sql == c.query);  // never pasted into the SQL
  // Every query of the loader refers to one copy of its SQL text.
  CHECK(&l.query("order:us:1").sql.str() == &q.sql.str());

  // A capture the query does not use is not bound (the backend refuses extra parameters).
  Loader unused = makeLoader(loaderConfig("t:{tenant}:{id:int}", LoaderType::kString), {":id"});
  q = unused.query("t:acme:7");
  REQUIRE(q.params.size() == 1);
  CHECK(q.params[0].name == ":id");
  CHECK(q.params[0].value == "7");
  CHECK(q.params[0].kind == SqlParam::Kind::kInteger);

  // A query without parameters (a template without captures).
  Loader fixed = makeLoader(loaderConfig("config:global", LoaderType::kString), {});
  q = fixed.query("config:global");
  CHECK(q.params.empty());
}

TEST_CASE("loader: decode of a string loader takes the first column") {
  Loader l = makeLoader(loaderConfig("user:{id}", LoaderType::kString));

  LoadedValue v = l.decode(rows({"name"}, {{text("ada")}}));
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.value == "ada");
  CHECK(v.fields.empty());
  CHECK(v.error.empty());
  CHECK_FALSE(v.timed_out);

  // Only the first column counts.
  v = l.decode(everyType());
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.value == "1");

  struct Case {
    SqlValue in;
    std::string out;
  };
  for (const Case& c : {Case{text("a\0b\r\n"s), "a\0b\r\n"s}, Case{text(""), ""},
                        Case{blob("\x00\xff"s), "\x00\xff"s}, Case{integer(-7), "-7"},
                        Case{real(2.5), "2.5"}, Case{real(0.1), "0.1"}}) {
    CAPTURE(c.out);
    v = l.decode(rows({"v"}, {{c.in}}));
    CHECK(v.kind == LoadedValue::Kind::kValue);
    CHECK(v.value == c.out);
  }
  // An empty string is a value, not an absent row.
  v = l.decode(rows({"v"}, {{text("")}}));
  CHECK(v.kind == LoadedValue::Kind::kValue);

  // No row, or a NULL first column: absent (a nil, remembered in the negative cache).
  v = l.decode(rows({"name"}, {}));
  CHECK(v.kind == LoadedValue::Kind::kAbsent);
  CHECK(v.value.empty());
  v = l.decode(rows({"name", "id"}, {{null(), integer(1)}}));
  CHECK(v.kind == LoadedValue::Kind::kAbsent);
}

TEST_CASE("loader: decode of a json loader makes the row an object") {
  Loader l = makeLoader(loaderConfig("user:{id}", LoaderType::kJson));
  LoadedValue v = l.decode(everyType());
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.value == R"({"id":1,"name":"ada","score":0.1,"avatar":"AP8AEA==","note":null})");
  CHECK(v.fields.empty());

  // A row of NULLs is still a row: an object of nulls, not absent.
  v = l.decode(rows({"a", "b"}, {{null(), null()}}));
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.value == R"({"a":null,"b":null})");

  v = l.decode(rows({"a"}, {}));
  CHECK(v.kind == LoadedValue::Kind::kAbsent);
  CHECK(v.value.empty());
}

TEST_CASE("loader: decode of a hash loader makes columns fields, without NULLs") {
  Loader l = makeLoader(loaderConfig("user:{id}", LoaderType::kHash));
  LoadedValue v = l.decode(everyType());
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.value.empty());
  CHECK(v.fields ==
        Fields{{"id", "1"}, {"name", "ada"}, {"score", "0.1"}, {"avatar", "\x00\xff\x00\x10"s}});

  // Column order is kept; an empty text is a field with an empty value.
  v = l.decode(rows({"z", "a", "m"}, {{text(""), null(), real(-1e-7)}}));
  CHECK(v.kind == LoadedValue::Kind::kValue);
  CHECK(v.fields == Fields{{"z", ""}, {"m", "-1e-07"}});

  // Nothing but NULLs: there is nothing to store, so absent.
  v = l.decode(rows({"a", "b"}, {{null(), null()}}));
  CHECK(v.kind == LoadedValue::Kind::kAbsent);
  CHECK(v.fields.empty());
  v = l.decode(rows({"a"}, {}));
  CHECK(v.kind == LoadedValue::Kind::kAbsent);
}

TEST_CASE("loader: decode of a failed query is an error naming the loader") {
  for (LoaderType type : {LoaderType::kString, LoaderType::kJson, LoaderType::kHash}) {
    Loader l = makeLoader(loaderConfig("user:{id}", type));

    LoadedValue v = l.decode(failure("no such table: users"));
    CHECK(v.kind == LoadedValue::Kind::kError);
    CHECK(v.error == "ERR loader 'user' failed: no such table: users");
    CHECK_FALSE(v.timed_out);
    CHECK(v.value.empty());
    CHECK(v.fields.empty());

    // SqliteBackend's row-limit message, reworded for max_rows = 1.
    v = l.decode(failure("more than 1 rows"));
    CHECK(v.kind == LoadedValue::Kind::kError);
    CHECK(v.error == "ERR loader 'user' failed: query returned more than one row");
    CHECK_FALSE(v.timed_out);

    // A timeout names the loader's own timeout, not the backend's wording.
    v = l.decode(failure("query timed out after 749 ms", true));
    CHECK(v.kind == LoadedValue::Kind::kError);
    CHECK(v.timed_out);
    CHECK(v.error == "ERR loader 'user' timed out after 750 ms");

    v = l.decode(failure("backend closed"));
    CHECK(v.error == "ERR loader 'user' failed: backend closed");
  }
}

TEST_CASE("loader: error texts") {
  LoaderConfig c = loaderConfig("user:{id}", LoaderType::kString);
  c.name = "users_by_id";
  c.backend = "primary";
  c.timeout_ms = 2000;
  Loader l = makeLoader(c);
  CHECK(l.failedError("no such column: x") == "ERR loader 'users_by_id' failed: no such column: x");
  CHECK(l.timeoutError() == "ERR loader 'users_by_id' timed out after 2000 ms");
  CHECK(l.rejectedError("queue full (1024 queries waiting)") ==
        "ERR loader 'users_by_id' rejected: backend 'primary' queue full (1024 queries waiting)");
  CHECK(l.rejectedError("closed") == "ERR loader 'users_by_id' rejected: backend 'primary' closed");
}

TEST_CASE("loader: pickTtlMs is the TTL, spread by the jitter") {
  std::mt19937_64 rng(12345);
  LoaderConfig c = loaderConfig("user:{id}", LoaderType::kString);

  c.ttl_ms = 0;  // no expiry
  Loader none = makeLoader(c);
  for (int i = 0; i < 10; ++i) CHECK(none.pickTtlMs(rng) == 0);

  c.ttl_ms = 10000;
  c.jitter_ms = 0;
  Loader fixed = makeLoader(c);
  for (int i = 0; i < 10; ++i) CHECK(fixed.pickTtlMs(rng) == 10000);

  c.jitter_ms = 3000;
  Loader jittered = makeLoader(c);
  uint64_t lo = UINT64_MAX, hi = 0;
  double sum = 0;
  constexpr int kDraws = 4000;
  for (int i = 0; i < kDraws; ++i) {
    uint64_t t = jittered.pickTtlMs(rng);
    REQUIRE(t >= 7000);
    REQUIRE(t <= 13000);
    lo = std::min(lo, t);
    hi = std::max(hi, t);
    sum += static_cast<double>(t);
  }
  // Uniform over the whole range, centred on the TTL.
  CHECK(lo < 7100);
  CHECK(hi > 12900);
  CHECK(std::abs(sum / kDraws - 10000) < 200);

  // The largest jitter allowed (ttl - 1) never yields 0, which would mean "no expiry".
  c.ttl_ms = 1000;
  c.jitter_ms = 999;
  Loader wide = makeLoader(c);
  for (int i = 0; i < 2000; ++i) {
    uint64_t t = wide.pickTtlMs(rng);
    REQUIRE(t >= 1);
    REQUIRE(t <= 1999);
  }
}

TEST_CASE("loader: encodeFill for a string is SET key value PX ttl NX") {
  Loader l = makeLoader(loaderConfig("user:{id}", LoaderType::kString));
  LoadedValue v;
  v.kind = LoadedValue::Kind::kValue;
  v.value = "ada";

  std::string out;
  l.encodeFill("user:42", v, 600000, &out);
  CHECK(
      out ==
      "*6\r\n$3\r\nSET\r\n$7\r\nuser:42\r\n$3\r\nada\r\n$2\r\nPX\r\n$6\r\n600000\r\n$2\r\nNX\r\n");

  // TTL 0: no expiry, no PX.
  out.clear();
  l.encodeFill("user:42", v, 0, &out);
  CHECK(out == "*4\r\n$3\r\nSET\r\n$7\r\nuser:42\r\n$3\r\nada\r\n$2\r\nNX\r\n");

  // Appends; binary-safe key and value; an empty value is an empty bulk.
  out = "prefix";
  v.value = "a\r\n\0b"s;
  l.encodeFill("k\0\r\n"s, v, 1, &out);
  CHECK(out ==
        "prefix*6\r\n$3\r\nSET\r\n$4\r\nk\0\r\n\r\n$5\r\na\r\n\0b\r\n"
        "$2\r\nPX\r\n$1\r\n1\r\n$2\r\nNX\r\n"s);
  out.clear();
  v.value.clear();
  l.encodeFill("e", v, 0, &out);
  CHECK(out == "*4\r\n$3\r\nSET\r\n$1\r\ne\r\n$0\r\n\r\n$2\r\nNX\r\n");

  // A json loader stores a string too.
  Loader json = makeLoader(loaderConfig("user:{id}", LoaderType::kJson));
  v.value = R"({"id":1})";
  out.clear();
  json.encodeFill("user:1", v, 1000, &out);
  CHECK(out ==
        "*6\r\n$3\r\nSET\r\n$6\r\nuser:1\r\n$8\r\n{\"id\":1}\r\n$2\r\nPX\r\n$4\r\n1000\r\n"
        "$2\r\nNX\r\n");
}

TEST_CASE("loader: encodeFill for a hash is one EVAL of the fill script") {
  REQUIRE(kHashFillScript.size() == 176);
  const std::string script = "$176\r\n" + std::string(kHashFillScript) + "\r\n";
  Loader l = makeLoader(loaderConfig("user:{id}", LoaderType::kHash));
  LoadedValue v;
  v.kind = LoadedValue::Kind::kValue;
  v.fields = {{"id", "1"}, {"name", "ada"}};

  std::string out;
  l.encodeFill("user:1", v, 600000, &out);
  CHECK(out == "*9\r\n$4\r\nEVAL\r\n" + script +
                   "$1\r\n1\r\n$6\r\nuser:1\r\n$6\r\n600000\r\n"
                   "$2\r\nid\r\n$1\r\n1\r\n$4\r\nname\r\n$3\r\nada\r\n");

  // TTL 0 is passed as "0": the script then sets no expiry.
  out.clear();
  v.fields = {{"f", "\0\r\n"s}};
  l.encodeFill("h", v, 0, &out);
  CHECK(out == "*7\r\n$4\r\nEVAL\r\n" + script + "$1\r\n1\r\n$1\r\nh\r\n$1\r\n0\r\n" +
                   "$1\r\nf\r\n$3\r\n" + "\0\r\n"s + "\r\n");
}

TEST_CASE("loader: sqlValueBytes") {
  CHECK(sqlValueBytes(null()).empty());
  CHECK(sqlValueBytes(integer(0)) == "0");
  CHECK(sqlValueBytes(integer(-42)) == "-42");
  CHECK(sqlValueBytes(integer(std::numeric_limits<int64_t>::max())) == "9223372036854775807");
  CHECK(sqlValueBytes(integer(std::numeric_limits<int64_t>::min())) == "-9223372036854775808");
  CHECK(sqlValueBytes(text("a\0b"s)) == "a\0b"s);
  CHECK(sqlValueBytes(blob("\xff\x00"s)) == "\xff\x00"s);
  CHECK(sqlValueBytes(text("")).empty());

  struct Case {
    double d;
    std::string_view out;
  };
  for (const Case& c :
       {Case{0.1, "0.1"}, Case{-2.5, "-2.5"}, Case{1e300, "1e+300"},
        Case{0.1 + 0.2, "0.30000000000000004"}, Case{2.0, "2"}, Case{1e-7, "1e-07"}}) {
    CAPTURE(c.out);
    CHECK(sqlValueBytes(real(c.d)) == c.out);
  }
  // Reals read back as the same double, bit for bit.
  for (double d : {0.1, 1.0 / 3, -2.5, 1e300, 5e-324, 1.7976931348623157e308, 123456789.123456789,
                   -0.0, 1e16, 9007199254740993.0}) {
    CAPTURE(d);
    std::string s = sqlValueBytes(real(d));
    CHECK(std::strtod(s.c_str(), nullptr) == d);
    CHECK(std::signbit(std::strtod(s.c_str(), nullptr)) == std::signbit(d));
  }
}

TEST_CASE("loader: rowJson types and escaping") {
  CHECK(rowJson({}, {}) == "{}");
  CHECK(rowJson({"n", "i", "r", "t", "b"},
                {null(), integer(-9), real(1.5), text("x"), blob("foo")}) ==
        R"({"n":null,"i":-9,"r":1.5,"t":"x","b":"Zm9v"})");
  CHECK(rowJson({"min", "max"}, {integer(std::numeric_limits<int64_t>::min()),
                                 integer(std::numeric_limits<int64_t>::max())}) ==
        R"({"min":-9223372036854775808,"max":9223372036854775807})");

  // Quotes, backslashes and control characters, in values and in column names.
  CHECK(rowJson({"q\"k\\"}, {text("say \"hi\" \\ bye")}) == R"({"q\"k\\":"say \"hi\" \\ bye"})");
  CHECK(rowJson({"c"}, {text("\n\r\t\b\f\x01\x1f\x00 \x7f"s)}) ==
        std::string(R"({"c":"\n\r\t\u0008\u000c\u0001\u001f\u0000 )") + "\x7f\"}");
  // UTF-8 passes through as is.
  CHECK(rowJson({"caf\xc3\xa9"}, {text("\xe2\x82\xac")}) == "{\"caf\xc3\xa9\":\"\xe2\x82\xac\"}");

  // Reals JSON cannot hold become null; others keep every digit.
  CHECK(rowJson({"a", "b", "c", "d", "e"},
                {real(std::numeric_limits<double>::infinity()),
                 real(-std::numeric_limits<double>::infinity()), real(std::nan("")), real(1e300),
                 real(0.30000000000000004)}) ==
        R"({"a":null,"b":null,"c":null,"d":1e+300,"e":0.30000000000000004})");
}

TEST_CASE("loader: rowJson writes blobs as padded base64") {
  struct Case {
    std::string in;
    std::string_view out;
  };
  for (const Case& c :
       {Case{"", ""}, Case{"f", "Zg=="}, Case{"fo", "Zm8="}, Case{"foo", "Zm9v"},
        Case{"foob", "Zm9vYg=="}, Case{"fooba", "Zm9vYmE="}, Case{"foobar", "Zm9vYmFy"},
        Case{"\x00\xff\x00\x10"s, "AP8AEA=="}, Case{"\xff\xfe\xfd", "//79"}, Case{"\x00"s, "AA=="},
        Case{"\xfb\xff", "+/8="}}) {
    CAPTURE(c.out);
    CHECK(rowJson({"b"}, {blob(c.in)}) == "{\"b\":\"" + std::string(c.out) + "\"}");
  }
  // Text is never base64'd, even when it holds binary bytes.
  CHECK(rowJson({"t"}, {text("foo")}) == R"({"t":"foo"})");
}

}  // namespace
}  // namespace readthru
