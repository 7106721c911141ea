#include "proxy/write_through.h"

#include "proxy/client_conn.h"
#include "proxy/log.h"
#include "proxy/read_through.h"
#include "proxy/reply_slot.h"
#include "proxy/server.h"
#include "resp/errors.h"
#include "resp/flat_reply.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

size_t g_live = 0;

std::string command(std::initializer_list<std::string_view> argv) {
  std::string out;
  resp::ReplyEncoder e(&out, 2);
  e.arrayHeader(argv.size());
  for (std::string_view a : argv) e.bulk(a);
  return out;
}

}  // namespace

size_t WriteThroughRequest::liveCount() { return g_live; }

WriteThroughRequest::WriteThroughRequest(Server* server, ReplySlot* slot, WritePlan plan,
                                         std::string request, bool answer)
    : server_(server),
      registry_(server->loaders()),
      slot_(slot),
      plan_(std::move(plan)),
      request_(std::move(request)),
      answer_(answer),
      behind_(plan_.kind == WritePlan::Kind::kBehind) {
  ++g_live;
}

WriteThroughRequest::~WriteThroughRequest() { --g_live; }

backends::UpstreamConn* WriteThroughRequest::conn() {
  if (slot_ != nullptr && slot_->client_ != nullptr) return slot_->client_->writeConn();
  return server_->pool()->shared(0, 2);
}

void WriteThroughRequest::start() {
  if (behind_) {
    preRead();  // only hash writes come here: does Redis hold the hash?
    return;
  }
  countWrites(plan_);
  if (plan_.nx || plan_.xx || plan_.op == WritePlan::Op::kHset ||
      plan_.op == WritePlan::Op::kHdel) {
    preRead();
  } else {
    writeDatabase();
  }
}

void WriteThroughRequest::preRead() {
  phase_ = Phase::kPreRead;
  backends::UpstreamConn* c = conn();
  if (c == nullptr) return finishError(resp::err::kUpstreamUnavailable);
  const std::string& key = plan_.items.front().key;
  bool hash = plan_.op == WritePlan::Op::kHset || plan_.op == WritePlan::Op::kHdel;
  c->send(command({hash ? "HGETALL" : "EXISTS", key}), this);
}

void WriteThroughRequest::replyData(const char* data, size_t len) { pre_read_.append(data, len); }

bool WriteThroughRequest::replyDone(char) {
  if (phase_ == Phase::kPreRead) {
    onPreRead(false);
  } else {  // the write itself, for a client that has gone
    cleanUpAfter(pre_read_);
    delete this;
  }
  return false;
}

void WriteThroughRequest::replyFailed(std::string_view) {
  if (phase_ == Phase::kPreRead) {
    onPreRead(true);
  } else {
    delete this;
  }
}

void WriteThroughRequest::onPreRead(bool failed) {
  std::string reply = std::move(pre_read_);
  pre_read_.clear();
  if (failed) return finishError(resp::err::kUpstreamUnavailable);
  if (slot_->client_ == nullptr) return finishEarly({});  // nothing written yet: stop here
  if (!reply.empty() && reply[0] == '-') {
    // WRONGTYPE and the like: Redis will refuse the write too; let it say so.
    writeRedis();
    return;
  }
  if (plan_.nx || plan_.xx) {
    bool exists = reply == ":1\r\n";
    if ((plan_.nx && exists) || (plan_.xx && !exists)) {
      writeRedis();  // the condition fails: Redis answers nil, the database is not touched
      return;
    }
    writeDatabase();
    return;
  }
  std::vector<std::pair<size_t, size_t>> spans;
  std::vector<std::pair<std::string, std::string>> fields;
  if (resp::splitFlatReply(reply, &spans)) {
    std::string_view r = reply;
    for (size_t i = 0; i + 1 < spans.size(); i += 2) {
      std::string_view f, v;
      if (resp::bulkPayload(r.substr(spans[i].first, spans[i].second), &f) &&
          resp::bulkPayload(r.substr(spans[i + 1].first, spans[i + 1].second), &v)) {
        fields.emplace_back(f, v);
      }
    }
  }
  if (behind_ && !fields.empty()) return writeRedis();
  if (fields.empty()) {
    Loader* loader = registry_->find(plan_.items.front().key);
    if (loader != nullptr && loader->isHash()) {
      loadBase();
      return;
    }
  }
  if (behind_) return writeRedis();
  WriteState& state = plan_.items.front().state;
  state.fields = applyHashChange(plan_, std::move(fields));
  state.kind = state.fields.empty() ? WriteState::Kind::kDeleted : WriteState::Kind::kHash;
  writeDatabase();
}

void WriteThroughRequest::loadBase() {
  phase_ = Phase::kLoadBase;
  const std::string& key = plan_.items.front().key;
  Loader* loader = registry_->find(key);
  std::string why;
  bool queued = loader->backend()->query(
      loader->query(key),
      [this, loader](backends::SqlResult&& r) {
        LoadedValue v = loader->decode(std::move(r));
        if (v.kind == LoadedValue::Kind::kError) return finishError(v.error);
        if (slot_->client_ == nullptr) return finishEarly({});
        if (behind_) {
          base_ = std::move(v);
          writeRedis();
          return;
        }
        WriteState& state = plan_.items.front().state;
        state.fields = applyHashChange(plan_, v.fields);
        for (auto& [f, value] : v.fields) {
          bool named = false;
          for (const auto& [sf, sv] : plan_.set_fields) named = named || sf == f;
          for (const auto& df : plan_.del_fields) named = named || df == f;
          if (!named) base_rest_.emplace_back(std::move(f), std::move(value));
        }
        state.kind = state.fields.empty() ? WriteState::Kind::kDeleted : WriteState::Kind::kHash;
        writeDatabase();
      },
      &why);
  if (!queued) finishError(loader->rejectedError("queue is full"));
}

void WriteThroughRequest::writeDatabase() {
  phase_ = Phase::kDatabase;
  std::vector<backends::SqlQuery> statements;
  for (const auto& item : plan_.items) {
    statements.push_back(item.writer->statement(item.key, item.state));
  }
  Writer* w = plan_.items.front().writer;
  std::string why;
  bool queued = w->backend()->transaction(
      std::move(statements), [this](backends::SqlResult&& r) { onDatabase(std::move(r)); }, &why);
  if (!queued) {
    ++w->stats().errors;
    finishError(w->failedError(why));
  }
}

void WriteThroughRequest::onDatabase(backends::SqlResult&& result) {
  Writer* w = plan_.items.front().writer;
  if (!result.ok) {
    ++(result.timed_out ? w->stats().timeouts : w->stats().errors);
    return finishError(result.timed_out ? w->timeoutError() : w->failedError(result.error));
  }
  db_written_ = true;
  w->stats().db_writes += plan_.items.size();
  // A load that read the row before this commit must not fill Redis with it.
  for (const auto& item : plan_.items) server_->readThrough()->noteKeyWritten(item.key);
  writeRedis();
}

void WriteThroughRequest::writeRedis() {
  phase_ = Phase::kRedis;
  backends::UpstreamConn* c = conn();
  if (c == nullptr) {
    if (db_written_) {
      log::warning(
          "writer '{}': the database has the write but Redis is unavailable: {} may "
          "stay stale in Redis until it expires",
          plan_.items.front().writer->name(), plan_.items.front().key);
    }
    return finishError(resp::err::kUpstreamUnavailable);
  }
  if (slot_->client_ == nullptr) {
    // Nobody waits for the reply, but the database has the write: Redis must follow.
    slot_->finishHeld({});
    slot_ = nullptr;
    c->send(request_, this);
    return;
  }
  if (base_.kind == LoadedValue::Kind::kValue && !base_.fields.empty()) {
    // Write-behind records the hash Redis holds after the command: put the row there first, so
    // what is queued is the whole row, and the reply is as if Redis had held it all along.
    Loader* loader = registry_->find(plan_.items.front().key);
    std::string fill;
    loader->encodeFill(plan_.items.front().key, base_, loader->config().ttl_ms, &fill);
    c->send(fill, nullptr);
  }
  slot_->held_ = false;
  slot_->awaiting_ = true;
  slot_->interceptor_ = this;
  c->send(request_, slot_);
  if (!base_rest_.empty()) {
    std::string hset;
    resp::ReplyEncoder e(&hset, 2);
    e.arrayHeader(2 + 2 * base_rest_.size());
    e.bulk("HSET");
    e.bulk(plan_.items.front().key);
    for (const auto& [f, v] : base_rest_) {
      e.bulk(f);
      e.bulk(v);
    }
    c->send(hset, nullptr);
  }
}

void WriteThroughRequest::onReply(ReplySlot* slot) {
  std::string reply;
  reply.swap(slot->data_);
  cleanUpAfter(reply);
  if (!answer_) reply.clear();
  slot->finishHeld(std::move(reply));
  delete this;
}

void WriteThroughRequest::cleanUpAfter(std::string_view reply) {
  bool failed = !reply.empty() && reply[0] == '-';
  // A failed Redis write after the database committed, or an NX/XX condition that another client
  // made fail after readthru checked it: drop the key, the next read loads the row.
  // SET NX answers nil when it did not set (with GET: the old value); SET XX answers nil when
  // it did not set, GET or not.
  bool nil = resp::isNilReply(reply);
  bool lost_race = !failed && ((plan_.xx && nil) || (plan_.nx && (plan_.get ? !nil : nil)));
  if (!db_written_ || !(failed || lost_race)) return;
  backends::UpstreamConn* c = conn();
  if (c == nullptr) return;
  std::string del;
  resp::ReplyEncoder e(&del, 2);
  e.arrayHeader(1 + plan_.items.size());
  e.bulk("DEL");
  for (const auto& item : plan_.items) e.bulk(item.key);
  c->send(del, nullptr);
}

void WriteThroughRequest::finishError(std::string_view message) {
  std::string out;
  resp::ReplyEncoder(&out,
                     slot_ != nullptr && slot_->client_ != nullptr ? slot_->client_->protocol() : 2)
      .error(message);
  finishEarly(std::move(out));
}

void WriteThroughRequest::finishEarly(std::string reply) {
  if (!answer_) reply.clear();
  if (slot_ != nullptr) {
    if (slot_->client_ != nullptr) slot_->client_->slotFinished(slot_, true);
    slot_->finishHeld(std::move(reply));
  }
  delete this;
}

}  // namespace readthru
