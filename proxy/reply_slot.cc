#include "proxy/reply_slot.h"

#include "proxy/client_conn.h"

namespace readthru {

void ReplySlot::replyData(const char* data, size_t len) {
  if (client_ == nullptr) return;  // orphan: the reply is read and dropped
  data_.append(data, len);
  client_->slotProgress(this, len);
}

void ReplySlot::replyFrame(std::string& frame) {
  if (client_ == nullptr) return;
  size_t len = frame.size();
  if (data_.empty()) {
    data_.swap(frame);  // no copy of a large frame
  } else {
    data_.append(frame);
  }
  client_->slotProgress(this, len);
}

bool ReplySlot::replyDone(char) {
  bool more;
  if (frames_left_ > 0) {
    more = --frames_left_ > 0;
  } else {
    more = client_ != nullptr && client_->subscriptionsLeft(unsubscribe_kind_) > 0;
  }
  if (more) return true;
  awaiting_ = false;
  done_ = true;
  if (client_ == nullptr) {
    delete this;
  } else {
    client_->slotFinished(this, false);
  }
  return false;
}

void ReplySlot::replyFailed(std::string_view error) {
  awaiting_ = false;
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
