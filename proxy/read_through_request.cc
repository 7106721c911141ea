#include "proxy/read_through_request.h"

#include <charconv>

#include "proxy/read_through.h"
#include "proxy/reply_slot.h"
#include "resp/flat_reply.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

size_t g_live = 0;

bool isNil(std::string_view r) { return resp::isNilReply(r); }

bool isEmptyAggregate(std::string_view r) { return r == "*0\r\n" || r == "%0\r\n"; }

bool splitFlatArray(std::string_view r, std::vector<std::pair<size_t, size_t>>* out) {
  return !r.empty() && r[0] == '*' && resp::splitFlatReply(r, out);
}

}  // namespace

size_t ReadThroughRequest::liveCount() { return g_live; }

ReadThroughRequest::ReadThroughRequest(ReadThrough* engine) : engine_(engine), op_(Op::kGet) {
  ++g_live;
}

void ReadThroughRequest::start(Op op, int protocol, RegistryRef registry) {
  // The rest was reset by finish(), while this object was still in cache: a request waits in
  // the spare list behind hundreds of others on a busy pipeline.
  registry_ = std::move(registry);
  op_ = op;
  protocol_ = protocol;
  slot_ = nullptr;
}

ReadThroughRequest::~ReadThroughRequest() { --g_live; }

void ReadThroughRequest::onReply(ReplySlot* slot) {
  slot_ = slot;
  reply_ = std::move(slot->data_);
  slot->data_.clear();
  if (slot->client_ == nullptr) {
    finish(std::move(reply_));  // nobody to answer: no load on its behalf
    return;
  }
  std::vector<std::pair<size_t, size_t>> spans;
  bool error = !reply_.empty() && reply_[0] == '-';
  switch (op_) {
    case Op::kGet:
      if (isNil(reply_)) return loadMissing({0});
      if (!error) {
        ++keys_[0].loader->stats().hits;
        std::string_view value;
        if (resp::bulkPayload(reply_, &value)) {
          engine_->hit(registry_, keys_[0].loader, keys_[0].name, value);
        }
      }
      break;
    case Op::kHgetall:
      if (isEmptyAggregate(reply_)) return loadMissing({0});
      if (!error) hashHit();
      break;
    case Op::kMget: {
      if (!splitFlatArray(reply_, &spans) || spans.size() != keys_.size()) break;
      std::vector<size_t> missing;
      for (size_t i = 0; i < spans.size(); ++i) {
        elements_.push_back({spans[i].first, spans[i].second});
        if (keys_[i].loader == nullptr) continue;
        std::string_view element = std::string_view(reply_).substr(spans[i].first, spans[i].second);
        std::string_view value;
        if (isNil(element)) {
          missing.push_back(i);
        } else {
          ++keys_[i].loader->stats().hits;
          if (resp::bulkPayload(element, &value)) {
            engine_->hit(registry_, keys_[i].loader, keys_[i].name, value);
          }
        }
      }
      if (missing.empty()) break;
      replacements_.resize(keys_.size());
      return loadMissing(missing);
    }
    case Op::kHget:
    case Op::kHmget: {
      bool some_nil = false;
      if (op_ == Op::kHget) {
        some_nil = isNil(reply_);
      } else if (splitFlatArray(reply_, &spans)) {
        for (auto& [off, len] : spans) {
          some_nil = some_nil || isNil(std::string_view(reply_).substr(off, len));
        }
      }
      // A nil field is a miss only if the whole hash is missing.
      if (some_nil && engine_->sendExists(keys_[0].name, this)) return;
      if (!error) hashHit();
      break;
    }
  }
  finish(std::move(reply_));
}

void ReadThroughRequest::replyData(const char* data, size_t len) {
  exists_reply_.append(data, len);
}

bool ReadThroughRequest::replyDone(char) {
  if (exists_reply_ == ":0\r\n" && slot_->client_ != nullptr) {
    loadMissing({0});
  } else {
    if (exists_reply_ == ":1\r\n") hashHit();
    finish(std::move(reply_));
  }
  return false;
}

void ReadThroughRequest::replyFailed(std::string_view) { finish(std::move(reply_)); }

void ReadThroughRequest::hashHit() {
  ++keys_[0].loader->stats().hits;
  engine_->hashHit(registry_, keys_[0].loader, keys_[0].name);
}

void ReadThroughRequest::loadMissing(const std::vector<size_t>& indexes) {
  starting_ = true;
  waiting_ += indexes.size();
  for (size_t i : indexes) engine_->miss(this, i, keys_[i].loader, keys_[i].name);
  starting_ = false;
  maybeFinish();
}

void ReadThroughRequest::onLoaded(size_t index, const LoadedValue& v) {
  if (v.kind == LoadedValue::Kind::kError) {
    if (error_.empty()) error_ = v.error;
  } else if (op_ == Op::kMget || op_ == Op::kGet) {
    std::string encoded;
    resp::ReplyEncoder e(&encoded, protocol_);
    if (v.kind == LoadedValue::Kind::kValue) {
      e.bulk(v.value);
    } else {
      e.null();
    }
    if (op_ == Op::kMget) {
      replacements_[index] = std::move(encoded);
    } else {
      loaded_reply_ = std::move(encoded);
    }
  } else {
    encodeHashReply(v, &loaded_reply_);
  }
  --waiting_;
  maybeFinish();
}

void ReadThroughRequest::encodeHashReply(const LoadedValue& v, std::string* out) const {
  resp::ReplyEncoder e(out, protocol_);
  auto field = [&](std::string_view name) {
    for (const auto& [f, value] : v.fields) {
      if (f == name) return e.bulk(value);
    }
    e.null();
  };
  switch (op_) {
    case Op::kHget:
      field(fields_[0]);
      break;
    case Op::kHmget:
      e.arrayHeader(fields_.size());
      for (const std::string& f : fields_) field(f);
      break;
    default:  // HGETALL
      e.mapHeader(v.fields.size());
      for (const auto& [f, value] : v.fields) {
        e.bulk(f);
        e.bulk(value);
      }
      break;
  }
}

void ReadThroughRequest::maybeFinish() {
  if (starting_ || waiting_ > 0) return;
  std::string out;
  if (!error_.empty()) {
    resp::ReplyEncoder(&out, protocol_).error(error_);
  } else if (op_ == Op::kMget) {
    resp::ReplyEncoder(&out, protocol_).arrayHeader(elements_.size());
    for (size_t i = 0; i < elements_.size(); ++i) {
      if (replacements_[i]) {
        out.append(*replacements_[i]);
      } else {
        out.append(reply_, elements_[i].offset, elements_[i].size);
      }
    }
  } else {
    out = std::move(loaded_reply_);
  }
  finish(std::move(out));
}

void ReadThroughRequest::finish(std::string&& reply) {
  slot_->finishHeld(std::move(reply));
  reply_.clear();
  elements_.clear();
  replacements_.clear();
  loaded_reply_.clear();
  error_.clear();
  exists_reply_.clear();
  waiting_ = 0;
  starting_ = false;
  registry_.reset();  // the last use of the keys' loaders
  engine_->recycle(this);
}

}  // namespace readthru
