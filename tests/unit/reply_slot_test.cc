#include "proxy/reply_slot.h"

#include <string>

#include <doctest/doctest.h>

namespace readthru {
namespace {

// A slot's state is what a new one has, whether make() allocated it or took it from the pool.
void checkFresh(const ReplySlot* s, ClientConn* client) {
  CHECK(s->client_ == client);
  CHECK(s->next_ == nullptr);
  CHECK(s->prev_ == nullptr);
  CHECK(s->data_.empty());
  CHECK_FALSE(s->done_);
  CHECK_FALSE(s->awaiting_);
  CHECK_FALSE(s->streamed_);
  CHECK_FALSE(s->held_);
  CHECK(s->interceptor_ == nullptr);
  CHECK(s->nil_loader_ == nullptr);
  CHECK(s->nil_key_.empty());
  CHECK(s->nil_protocol_ == 2);
  CHECK(s->effect_ == StateEffect::kNone);
  CHECK_FALSE(s->proves_unanswered_);
  CHECK(s->frames_left_ == 1);
  CHECK(s->unsubscribe_kind_ == 0);
  CHECK(s->select_db_ == 0);
  CHECK(s->class_ == CommandClass::kNone);
  CHECK(s->taken_at_ns_ == 0);
}

TEST_CASE("reply slot: a recycled slot comes back from make() as a new one") {
  auto* client = reinterpret_cast<ClientConn*>(0x1000);  // never dereferenced by these calls
  ReplySlot* s = ReplySlot::make(client);
  checkFresh(s, client);
  // Everything a slot's life may set.
  s->data_ = std::string(100, 'x');
  s->done_ = s->awaiting_ = s->streamed_ = s->held_ = true;
  s->nil_key_ = "user:000000000042";
  s->nil_protocol_ = 3;
  s->effect_ = StateEffect::kSticky;
  s->proves_unanswered_ = true;
  s->frames_left_ = -1;
  s->unsubscribe_kind_ = 'c';
  s->select_db_ = 5;
  s->class_ = CommandClass::kRead;
  s->taken_at_ns_ = 12345;
  ReplySlot::recycle(s);

  auto* other = reinterpret_cast<ClientConn*>(0x2000);
  ReplySlot* t = ReplySlot::make(other);
  checkFresh(t, other);
  ReplySlot::recycle(t);
}

TEST_CASE("reply slot: a slot holding a large reply does not keep its buffer in the pool") {
  ReplySlot* s = ReplySlot::make(nullptr);
  s->data_.assign(1 << 20, 'x');
  ReplySlot::recycle(s);
  ReplySlot* t = ReplySlot::make(nullptr);
  CHECK(t->data_.empty());
  CHECK(t->data_.capacity() < (1 << 20));
  ReplySlot::recycle(t);
}

}  // namespace
}  // namespace readthru
