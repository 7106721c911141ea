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

constexpr std::string_view kMulti = "*1\r\n$5\r\nMULTI\r\n";
constexpr std::string_view kExec = "*1\r\n$4\r\nEXEC\r\n";

}  // namespace

size_t WriteBehindBatch::liveCount() { return g_live; }

WriteBehindBatch::WriteBehindBatch() {
  ++g_live;
  // One allocation each instead of a growing vector's (a batch holds up to kMaxQueued writes).
  members_.reserve(kMaxQueued);
  queued_.reserve(kMaxQueued);
}
WriteBehindBatch::~WriteBehindBatch() { --g_live; }

void WriteBehindBatch::join(backends::UpstreamConn* conn, const WritePlan& plan,
                            std::string_view request, ReplySlot* slot) {
  // The only kind of batch an upstream connection is given.
  auto* b = static_cast<WriteBehindBatch*>(conn->openBatch());
  if (b == nullptr) {
    b = new WriteBehindBatch();
    conn->setOpenBatch(b);
    conn->sendInBatch(kMulti, b);
  }
  conn->sendInBatch(request, b);
  ++b->requests_;
  b->members_.push_back({slot, {}});
  for (const auto& item : plan.items) {
    b->queued_.push_back({item.writer->name(), item.key, WriteBehind::encodeState(item.state)});
  }
  if (b->queued_.size() >= kMaxQueued) conn->setOpenBatch(nullptr);  // seals it
}

std::vector<std::string> WriteBehindBatch::closing(const std::vector<Queued>& queued) {
  std::vector<std::string_view> writers;
  for (const Queued& q : queued) {
    bool seen = false;
    for (std::string_view w : writers) seen = seen || w == q.writer;
    if (!seen) writers.push_back(q.writer);
  }
  std::vector<std::string> out;
  for (std::string_view w : writers) {
    size_t n = 0;
    for (const Queued& q : queued) n += q.writer == w;
    std::string hset, xadd;
    resp::ReplyEncoder h(&hset, 2), x(&xadd, 2);
    h.arrayHeader(2 + 2 * n);
    h.bulk("HSET");
    h.bulk(WriteBehind::pendingKey(w));
    x.arrayHeader(3 + 2 * n);
    x.bulk("XADD");
    x.bulk(WriteBehind::streamKey(w));
    x.bulk("*");
    for (const Queued& q : queued) {
      if (q.writer != w) continue;
      h.bulk(q.key);
      h.bulk(q.state);
      x.bulk("k");
      x.bulk(q.key);
    }
    out.push_back(std::move(hset));
    out.push_back(std::move(xadd));
  }
  return out;
}

void WriteBehindBatch::seal(backends::UpstreamConn* conn) {
  for (const std::string& r : closing(queued_)) {
    conn->sendInBatch(r, this);
    ++requests_;
  }
  conn->sendInBatch(kExec, this);
  ++requests_;
  sealed_ = true;
  queued_.clear();
}

void WriteBehindBatch::replyData(const char* data, size_t len) { reply_.append(data, len); }

bool WriteBehindBatch::replyDone(char) {
  size_t index = replies_;
  if (index >= 1 && index <= members_.size()) {
    if (!reply_.empty() && reply_[0] == '-') members_[index - 1].error = std::move(reply_);
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
  delete this;
}

void WriteBehindBatch::answerMembers() {
  if (exec_.empty()) {
    // EXEC never answered: the connection lost the transaction, so nobody's write may be assumed.
    for (Member& m : members_) m.slot->replyFailed(failed_);
    return;
  }
  std::vector<std::pair<size_t, size_t>> elements;
  bool ok = exec_[0] == '*' && resp::splitFlatReply(exec_, &elements) &&
            elements.size() >= members_.size();
  std::string refused;  // Redis discarded the transaction: why, as it told the first refused
  if (!ok) {
    for (const Member& m : members_) {
      if (refused.empty() && !m.error.empty()) refused = m.error;
    }
    if (refused.empty()) {
      refused = exec_[0] == '-' ? exec_ : "-ERR unexpected reply to a write-behind transaction\r\n";
    }
  }
  for (size_t i = 0; i < members_.size(); ++i) {
    std::string_view r;
    if (ok) {
      r = std::string_view(exec_).substr(elements[i].first, elements[i].second);
    } else {
      r = members_[i].error.empty() ? refused : members_[i].error;
    }
    ReplySlot* slot = members_[i].slot;
    slot->replyData(r.data(), r.size());
    slot->replyDone(r[0]);  // may free an orphan slot
  }
}

}  // namespace readthru
