#include "proxy/write_behind_batch.h"

#include "proxy/reply_slot.h"
#include "proxy/write_behind.h"
#include "proxy/writer.h"
#include "resp/flat_reply.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

size_t g_live = 0;

// Writes queued by one transaction at most: each costs one HSET field and one XADD field, and a
// flusher reads whole entries, so this also bounds the writes one stream entry carries.
constexpr size_t kMaxQueued = 64;

// A larger SET value goes in its own SET: a run costs one more copy of what it holds.
constexpr size_t kMaxRunValue = 64 * 1024;

// Batches kept for reuse: about as many as are in flight at once on a busy connection.
constexpr size_t kMaxSpare = 8;

constexpr std::string_view kMulti = "*1\r\n$5\r\nMULTI\r\n";
constexpr std::string_view kExec = "*1\r\n$4\r\nEXEC\r\n";

// The spare batches; freed at exit.
struct Spares {
  std::vector<WriteBehindBatch*> batches;
  ~Spares() {
    for (WriteBehindBatch* b : batches) delete b;
  }
};
Spares g_spares;

}  // namespace

size_t WriteBehindBatch::liveCount() { return g_live; }

WriteBehindBatch::WriteBehindBatch() = default;
WriteBehindBatch::~WriteBehindBatch() = default;

void WriteBehindBatch::recycle() {
  --g_live;
  if (g_spares.batches.size() >= kMaxSpare) return delete this;
  members_.clear();
  commands_ = 0;
  for (std::string& e : errors_) e.clear();
  run_.clear();
  run_pairs_ = 0;
  closing_.clear();
  requests_ = 1;
  replies_ = 0;
  sealed_ = false;
  reply_.clear();
  exec_.clear();
  failed_.clear();
  g_spares.batches.push_back(this);
}

void WriteBehindBatch::join(backends::UpstreamConn* conn, const WritePlan& plan,
                            std::string_view request, bool plain_set, ReplySlot* slot) {
  // The only kind of batch an upstream connection is given.
  auto* b = static_cast<WriteBehindBatch*>(conn->openBatch());
  if (b == nullptr) {
    if (g_spares.batches.empty()) {
      b = new WriteBehindBatch();
    } else {
      b = g_spares.batches.back();
      g_spares.batches.pop_back();
    }
    ++g_live;
    conn->setOpenBatch(b);
    conn->sendInBatch(kMulti, b);
  }
  if (plain_set && plan.items.front().state.value.size() <= kMaxRunValue) {
    if (b->run_pairs_ == 0) ++b->commands_;
    const WritePlan::Item& item = plan.items.front();
    resp::ReplyEncoder e(&b->run_, 2);
    e.bulk(item.key);
    e.bulk(item.state.value);
    ++b->run_pairs_;
  } else {
    b->endRun(conn);
    conn->sendInBatch(request, b);
    ++b->requests_;
    ++b->commands_;
  }
  b->members_.push_back({slot, b->commands_ - 1});
  for (const auto& item : plan.items) b->closing_.add(item.writer->name(), item.key, item.state);
  if (b->closing_.writes() >= kMaxQueued) conn->setOpenBatch(nullptr);  // seals it
}

void WriteBehindBatch::Closing::add(std::string_view writer, std::string_view key,
                                    const WriteState& state) {
  Part* p = nullptr;
  for (size_t i = 0; i < used_ && p == nullptr; ++i) {
    if (parts_[i].writer == writer) p = &parts_[i];
  }
  if (p == nullptr) {
    if (used_ == parts_.size()) parts_.emplace_back();
    p = &parts_[used_++];
    if (p->writer != writer) {
      p->writer = writer;
      p->pending_key = WriteBehind::pendingKey(writer);
      p->stream_key = WriteBehind::streamKey(writer);
    }
  }
  state_.clear();
  WriteBehind::appendState(state, &state_);
  resp::ReplyEncoder h(&p->states, 2);
  h.bulk(key);
  h.bulk(state_);
  WriteBehind::appendKeyToList(key, &p->keys);
  ++p->writes;
  ++writes_;
}

void WriteBehindBatch::Closing::build(const Part& p, bool hset) {
  request_.clear();
  resp::ReplyEncoder e(&request_, 2);
  if (hset) {
    e.arrayHeader(2 + 2 * p.writes);
    e.bulk("HSET");
    e.bulk(p.pending_key);
    request_.append(p.states);
  } else {
    e.arrayHeader(5);
    e.bulk("XADD");
    e.bulk(p.stream_key);
    e.bulk("*");
    e.bulk("ks");
    e.bulk(p.keys);
  }
}

void WriteBehindBatch::Closing::clear() {
  for (size_t i = 0; i < used_; ++i) {
    parts_[i].writes = 0;
    parts_[i].states.clear();
    parts_[i].keys.clear();
  }
  used_ = 0;
  writes_ = 0;
}

void WriteBehindBatch::endRun(backends::UpstreamConn* conn) {
  if (run_pairs_ == 0) return;
  std::string header;
  resp::ReplyEncoder e(&header, 2);
  e.arrayHeader(1 + 2 * run_pairs_);
  e.bulk("MSET");
  run_.insert(0, header);
  conn->sendInBatch(run_, this);
  ++requests_;
  run_.clear();
  run_pairs_ = 0;
}

void WriteBehindBatch::seal(backends::UpstreamConn* conn) {
  endRun(conn);
  closing_.requests([&](std::string_view r) {
    conn->sendInBatch(r, this);
    ++requests_;
  });
  conn->sendInBatch(kExec, this);
  ++requests_;
  sealed_ = true;
}

void WriteBehindBatch::replyData(const char* data, size_t len) { reply_.append(data, len); }

bool WriteBehindBatch::replyDone(char) {
  size_t index = replies_;
  if (index >= 1 && index <= commands_) {
    if (!reply_.empty() && reply_[0] == '-') {
      if (errors_.size() < commands_) errors_.resize(commands_);
      errors_[index - 1].swap(reply_);
    }
  } else if (sealed_ && index + 1 == requests_) {
    exec_ = std::move(reply_);
  }
  reply_.clear();
  answered();
  return false;
}

void WriteBehindBatch::replyFailed(std::string_view error) {
  if (failed_.empty()) failed_ = error;
  reply_.clear();
  answered();
}

void WriteBehindBatch::answered() {
  // Replies come only after the batch is sealed: nothing reaches the socket before a flush.
  ++replies_;
  if (!sealed_ || replies_ < requests_) return;
  answerMembers();
  recycle();
}

void WriteBehindBatch::answerMembers() {
  if (exec_.empty()) {
    // EXEC never answered: the connection lost the transaction, so nobody's write may be assumed.
    for (Member& m : members_) m.slot->replyFailed(failed_);
    return;
  }
  std::vector<std::pair<size_t, size_t>> elements;
  bool ok =
      exec_[0] == '*' && resp::splitFlatReply(exec_, &elements) && elements.size() >= commands_;
  auto error = [this](size_t command) {
    return command < errors_.size() ? std::string_view(errors_[command]) : std::string_view();
  };
  std::string_view refused;  // Redis discarded the transaction: why, as it told the first refused
  if (!ok) {
    for (size_t c = 0; c < commands_ && refused.empty(); ++c) refused = error(c);
    if (refused.empty()) {
      refused = exec_[0] == '-' ? std::string_view(exec_)
                                : "-ERR unexpected reply to a write-behind transaction\r\n";
    }
  }
  for (const Member& m : members_) {
    std::string_view r;
    if (ok) {
      r = std::string_view(exec_).substr(elements[m.command].first, elements[m.command].second);
    } else {
      r = error(m.command).empty() ? refused : error(m.command);
    }
    m.slot->replyData(r.data(), r.size());
    m.slot->replyDone(r[0]);  // may free an orphan slot
  }
}

}  // namespace readthru
