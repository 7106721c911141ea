#include "proxy/loader.h"

#include <fmt/format.h>

#include <cmath>

#include "proxy/json_string.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

// Fills a hash only if the key is still absent, with its TTL, in one atomic step.
// KEYS[1] the key; ARGV[1] the TTL in ms (0: none); ARGV[2..] field, value, field, value...
constexpr std::string_view kHashFillScript =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) "
    "if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return 1";

// What SqliteBackend says when a query returns more rows than SqlQuery::max_rows (1 here).
constexpr std::string_view kTooManyRows = "more than 1 rows";

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t n = byte(i) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.append("==");
  } else if (i + 2 == in.size()) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

}  // namespace

std::string sqlValueBytes(const backends::SqlValue& v) {
  using Type = backends::SqlValue::Type;
  switch (v.type) {
    case Type::kNull:
      return {};
    case Type::kInteger:
      return std::to_string(v.integer);
    case Type::kReal:
      return fmt::format("{}", v.real);
    case Type::kText:
    case Type::kBlob:
      return v.bytes;
  }
  return {};
}

std::string rowJson(const std::vector<std::string>& columns,
                    const std::vector<backends::SqlValue>& row) {
  using Type = backends::SqlValue::Type;
  std::string out = "{";
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out.push_back(',');
    appendJsonString(columns[i], &out);
    out.push_back(':');
    const backends::SqlValue& v = row[i];
    switch (v.type) {
      case Type::kNull:
        out.append("null");
        break;
      case Type::kInteger:
        out.append(std::to_string(v.integer));
        break;
      case Type::kReal:
        // JSON has no NaN or infinity.
        out.append(std::isfinite(v.real) ? fmt::format("{}", v.real) : "null");
        break;
      case Type::kText:
        appendJsonString(v.bytes, &out);
        break;
      case Type::kBlob:
        appendJsonString(base64(v.bytes), &out);
        break;
    }
  }
  out.push_back('}');
  return out;
}

Loader::Loader(LoaderConfig config, KeyTemplate tmpl, backends::SqliteBackend* backend,
               const std::vector<std::string>& params)
    : config_(std::move(config)),
      template_(std::move(tmpl)),
      backend_(backend),
      sql_(config_.query) {
  const auto& names = template_.captureNames();
  for (const std::string& p : params) {
    std::string_view bare = std::string_view(p).substr(1);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == bare) {
        params_.push_back({p, i, template_.captureType(i) == CaptureType::kInt});
        break;
      }
    }
  }
}

backends::SqlQuery Loader::query(std::string_view key) const {
  // Reused: a query per load would otherwise allocate its captures each time.
  static thread_local KeyTemplate::Captures captures;
  template_.match(key, &captures);
  backends::SqlQuery q;
  q.sql = sql_;
  q.timeout_ms = config_.timeout_ms;
  q.max_rows = 1;
  q.params.reserve(params_.size());
  for (const Param& p : params_) {
    q.params.push_back(
        {p.name, std::string(captures[p.capture].second),
         p.integer ? backends::SqlParam::Kind::kInteger : backends::SqlParam::Kind::kText});
  }
  return q;
}

LoadedValue Loader::decode(backends::SqlResult&& result) const {
  LoadedValue v;
  if (!result.ok) {
    v.kind = LoadedValue::Kind::kError;
    v.timed_out = result.timed_out;
    if (result.timed_out) {
      v.error = timeoutError();
    } else if (result.error == kTooManyRows) {
      v.error = failedError("query returned more than one row");
    } else {
      v.error = failedError(result.error);
    }
    return v;
  }
  if (result.rows.empty()) return v;  // kAbsent
  auto& row = result.rows.front();
  switch (config_.type) {
    case LoaderType::kString:
      if (row.empty() || row[0].type == backends::SqlValue::Type::kNull) return v;
      v.value = row[0].type == backends::SqlValue::Type::kText ||
                        row[0].type == backends::SqlValue::Type::kBlob
                    ? std::move(row[0].bytes)
                    : sqlValueBytes(row[0]);
      break;
    case LoaderType::kJson:
      v.value = rowJson(result.columns, row);
      break;
    case LoaderType::kHash:
      for (size_t i = 0; i < row.size(); ++i) {
        if (row[i].type == backends::SqlValue::Type::kNull) continue;  // a hash holds no NULL
        v.fields.emplace_back(result.columns[i], sqlValueBytes(row[i]));
      }
      if (v.fields.empty()) return v;  // nothing to store: absent
      break;
  }
  v.kind = LoadedValue::Kind::kValue;
  return v;
}

std::string Loader::failedError(std::string_view why) const {
  return fmt::format("ERR loader '{}' failed: {}", config_.name, why);
}

std::string Loader::timeoutError() const {
  return fmt::format("ERR loader '{}' timed out after {} ms", config_.name, config_.timeout_ms);
}

std::string Loader::rejectedError(std::string_view why) const {
  return fmt::format("ERR loader '{}' rejected: backend '{}' {}", config_.name, config_.backend,
                     why);
}

uint64_t Loader::pickTtlMs(std::mt19937_64& rng) const {
  if (config_.ttl_ms == 0) return 0;
  if (config_.jitter_ms == 0) return config_.ttl_ms;
  std::uniform_int_distribution<uint64_t> d(config_.ttl_ms - config_.jitter_ms,
                                            config_.ttl_ms + config_.jitter_ms);
  return d(rng);
}

void Loader::encodeFill(std::string_view key, const LoadedValue& v, uint64_t ttl_ms,
                        std::string* out) const {
  resp::ReplyEncoder e(out, 2);  // a request is an array of bulk strings
  std::string ttl = std::to_string(ttl_ms);
  if (!isHash()) {
    e.arrayHeader(ttl_ms > 0 ? 6 : 4);
    e.bulk("SET");
    e.bulk(key);
    e.bulk(v.value);
    if (ttl_ms > 0) {
      e.bulk("PX");
      e.bulk(ttl);
    }
    e.bulk("NX");
    return;
  }
  e.arrayHeader(5 + 2 * v.fields.size());
  e.bulk("EVAL");
  e.bulk(kHashFillScript);
  e.bulk("1");
  e.bulk(key);
  e.bulk(ttl);
  for (const auto& [field, value] : v.fields) {
    e.bulk(field);
    e.bulk(value);
  }
}

}  // namespace readthru
