#include "proxy/reply_slot.h"

#include <new>
#include <vector>

#include "proxy/client_conn.h"
#include "proxy/loader.h"

namespace readthru {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPool = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPool = false;
#else
constexpr bool kPool = true;
#endif
#else
constexpr bool kPool = true;
#endif

// As many slots as a busy moment has in flight (50 clients x 16 pipelined is 800), so a steady
// load allocates none; buffers larger than a typical small reply or key are freed, not kept.
constexpr size_t kMaxPooled = 4096;
constexpr size_t kKeepData = 1024;
constexpr size_t kKeepKey = 256;

struct Pool {
  std::vector<ReplySlot*> slots;
  ~Pool() {
    for (ReplySlot* s : slots) delete s;
  }
};
Pool g_pool;

}  // namespace

ReplySlot* ReplySlot::make(ClientConn* client) {
  if (g_pool.slots.empty()) return new ReplySlot(client);
  ReplySlot* s = g_pool.slots.back();
  g_pool.slots.pop_back();
  s->client_ = client;
  return s;
}

void ReplySlot::recycle(ReplySlot* s) {
  if (!kPool || g_pool.slots.size() >= kMaxPooled) {
    delete s;
    return;
  }
  std::string data = std::move(s->data_);
  std::string key = std::move(s->nil_key_);
  s->~ReplySlot();
  new (s) ReplySlot(nullptr);
  if (data.capacity() <= kKeepData) {
    data.clear();
    s->data_ = std::move(data);
  }
  if (key.capacity() <= kKeepKey) {
    key.clear();
    s->nil_key_ = std::move(key);
  }
  g_pool.slots.push_back(s);
}

void ReplySlot::replyData(const char* data, size_t len) {
  if (client_ == nullptr) return;  // orphan: the reply is read and dropped
  data_.append(data, len);
  if (interceptor_ != nullptr) return;  // kept whole for the interceptor, never streamed
  if (nil_loader_ != nullptr) {
    if (!resolveNilWatch()) return;
    len = data_.size();  // bytes held while undecided count now
  }
  client_->slotProgress(this, len);
}

bool ReplySlot::resolveNilWatch() {
  // A nil is "$-1\r\n" (RESP2) or "_\r\n" (RESP3); an error or a value streams.
  if (data_.empty() || (data_[0] == '$' && data_.size() < 2)) return false;
  Loader* loader = nil_loader_;
  nil_loader_ = nullptr;
  RegistryRef registry = std::move(nil_registry_);  // `loader` lives at least until we return
  if (data_[0] == '_' || (data_[0] == '$' && data_[1] == '-')) {
    interceptor_ = client_->interceptNil(std::move(registry), loader, nil_key_, nil_protocol_);
    if (interceptor_ != nullptr) return false;
  } else if (data_[0] != '-') {
    ++loader->stats().hits;
  }
  return true;
}

void ReplySlot::replyFrame(std::string& frame) {
  if (client_ == nullptr) return;
  size_t len = frame.size();
  if (data_.empty()) {
    data_.swap(frame);  // no copy of a large frame
  } else {
    data_.append(frame);
  }
  if (interceptor_ != nullptr) return;
  if (nil_loader_ != nullptr) {
    if (!resolveNilWatch()) return;
    len = data_.size();
  }
  client_->slotProgress(this, len);
}

bool ReplySlot::replyDone(char type) {
  bool more;
  if (type != '*' && type != '>') {
    // Not a confirmation (+QUEUED inside a transaction, an error): the command's only reply.
    more = false;
  } else if (frames_left_ > 0) {
    more = --frames_left_ > 0;
  } else {
    more = client_ != nullptr && client_->subscriptionsLeft(unsubscribe_kind_) > 0;
  }
  if (more) return true;
  awaiting_ = false;
  // A whole reply always decides a nil watch (an orphan's never started one).
  if (nil_loader_ != nullptr && client_ != nullptr && resolveNilWatch()) {
    client_->slotProgress(this, data_.size());
  }
  if (interceptor_ != nullptr) {
    held_ = true;
    if (client_ != nullptr) client_->slotFinished(this, false);
    SlotInterceptor* i = interceptor_;
    interceptor_ = nullptr;
    i->onReply(this);  // may free this slot
    return false;
  }
  done_ = true;
  if (client_ == nullptr) {
    delete this;
  } else {
    client_->slotFinished(this, false);
  }
  return false;
}

void ReplySlot::finishHeld(std::string&& bytes) {
  held_ = false;
  if (client_ == nullptr) {
    delete this;
    return;
  }
  client_->completeHeld(this, std::move(bytes));
}

void ReplySlot::replyFailed(std::string_view error) {
  awaiting_ = false;
  if (interceptor_ != nullptr) {
    delete interceptor_;  // it never saw a reply: nothing else to undo
    interceptor_ = nullptr;
    data_.clear();  // collected for the interceptor, never counted as output
  }
  done_ = true;
  if (client_ == nullptr) {
    delete this;
    return;
  }
  client_->slotBytesDropped(data_.size());
  data_.clear();
  if (streamed_) {
    // Part of this reply already went out: the stream cannot be repaired, only ended.
    client_->slotFinished(this, true);
    client_->drainAndClose();
    return;
  }
  std::string reply = "-";
  reply.append(error);
  reply.append("\r\n");
  client_->completeSlot(this, std::move(reply));
  client_->slotFinished(this, true);
}

}  // namespace readthru
