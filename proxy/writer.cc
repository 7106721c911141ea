#include "proxy/writer.h"

#include <fmt/format.h>

namespace readthru {

Writer::Writer(WriterConfig config, KeyTemplate tmpl, backends::SqliteBackend* backend,
               const std::vector<std::string>& upsert_params,
               const std::vector<std::string>& delete_params)
    : config_(std::move(config)),
      template_(std::move(tmpl)),
      backend_(backend),
      upsert_sql_(config_.upsert),
      delete_sql_(config_.del) {
  upsert_ = plan(upsert_params);
  delete_ = plan(delete_params);
}

std::vector<Writer::Param> Writer::plan(const std::vector<std::string>& params) const {
  std::vector<Param> out;
  const auto& names = template_.captureNames();
  for (const std::string& p : params) {
    std::string_view bare = std::string_view(p).substr(1);
    Param param{p, Param::Source::kField, 0, false, true};
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == bare) {
        param.source = Param::Source::kCapture;
        param.capture = i;
        param.integer = template_.captureType(i) == CaptureType::kInt;
      }
    }
    if (param.source != Param::Source::kCapture && bare == "value") {
      param.source = Param::Source::kValue;
    }
    // Spellings of one name (:value, @value) bind the same value: all but the last copy it.
    for (Param& earlier : out) {
      if (earlier.source == param.source && param.source != Param::Source::kCapture &&
          std::string_view(earlier.name).substr(1) == bare) {
        earlier.last_use = false;
      }
    }
    out.push_back(std::move(param));
  }
  return out;
}

backends::SqlQuery Writer::statement(std::string_view key, WriteState state) const {
  // Reused: a statement per key written would otherwise allocate its captures each time.
  static thread_local KeyTemplate::Captures captures;
  template_.match(key, &captures);
  bool remove = state.kind == WriteState::Kind::kDeleted;
  backends::SqlQuery q;
  q.sql = remove ? delete_sql_ : upsert_sql_;
  q.timeout_ms = config_.timeout_ms;
  const std::vector<Param>& params = remove ? delete_ : upsert_;
  q.params.reserve(params.size());
  for (const Param& p : params) {
    backends::SqlParam bound{p.name, {}, backends::SqlParam::Kind::kText};
    auto null = [&bound] { bound.kind = backends::SqlParam::Kind::kNull; };
    switch (p.source) {
      case Param::Source::kCapture:
        bound.value = std::string(captures[p.capture].second);
        if (p.integer) bound.kind = backends::SqlParam::Kind::kInteger;
        break;
      case Param::Source::kValue:
        if (state.kind == WriteState::Kind::kString) {
          bound.value = p.last_use ? std::move(state.value) : state.value;
        } else {
          null();
        }
        break;
      case Param::Source::kField: {
        null();
        for (auto& [f, v] : state.fields) {
          if (f == std::string_view(p.name).substr(1)) {
            bound.value = p.last_use ? std::move(v) : v;
            bound.kind = backends::SqlParam::Kind::kText;
            break;
          }
        }
        break;
      }
    }
    q.params.push_back(std::move(bound));
  }
  return q;
}

std::string Writer::failedError(std::string_view why) const {
  return fmt::format("ERR writer '{}' failed: {}", config_.name, why);
}

std::string Writer::timeoutError() const {
  return fmt::format("ERR writer '{}' timed out after {} ms", config_.name, config_.timeout_ms);
}

}  // namespace readthru
