#pragma once
// SlotInterceptor: something that must see a reply whole before the client does, and may answer
// in its place: read-through (a nil from Redis becomes a loaded value) and INFO (readthru adds
// its own section). The upstream reply collects in the slot, nothing of it streams out; when it
// is complete the slot is held and the interceptor decides what the client gets.
//
// Ownership: the interceptor is attached to one slot and owns itself. After onReply() it must
// finish the slot exactly once with ReplySlot::finishHeld() (which copes with a client that went
// away meanwhile) and then free itself. If the upstream request fails instead, the slot deletes
// the interceptor without calling onReply() and answers the error itself.

namespace readthru {

class ReplySlot;

class SlotInterceptor {
 public:
  virtual ~SlotInterceptor() = default;
  // The upstream reply is complete in slot->data_; the slot is held until finishHeld().
  virtual void onReply(ReplySlot* slot) = 0;
};

}  // namespace readthru
