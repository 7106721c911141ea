#pragma once
// hiredis's synchronous objects with owners, for the benchmark load generators.

#include <hiredis/hiredis.h>

#include <memory>

namespace loadgen {

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct CtxDeleter {
  void operator()(redisContext* c) const {
    if (c != nullptr) redisFree(c);
  }
};
using Ctx = std::unique_ptr<redisContext, CtxDeleter>;

}  // namespace loadgen
