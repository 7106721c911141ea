#pragma once
// ReadThroughRequest: one read-through command (GET, MGET, HGET, HMGET or HGETALL) between
// Redis's reply and the client. It looks at the reply for the keys that missed, asks ReadThrough
// to load them, and writes the reply the client would have had if Redis had held the values all
// along, in the client's protocol:
//
//   GET     nil                      -> the loaded value (or nil)
//   MGET    nil elements             -> loaded in parallel; one array in key order
//   HGETALL empty (no such hash)     -> the loaded hash
//   HGET/HMGET nil field(s)          -> EXISTS key: a missing field of an existing hash is just
//                                       nil; a missing hash is loaded and the fields read from it
//
// An error from a load (of any key of an MGET) becomes the whole reply, as its -ERR text.
// Ownership: handed out by ReadThrough::intercept, it owns itself; after finishing its slot it goes
// back to the engine for reuse (the hit path allocates nothing), and it outlives a client that goes
// away until its loads and EXISTS check have answered.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/reply_target.h"
#include "proxy/loader.h"
#include "proxy/registry_ref.h"
#include "proxy/slot_interceptor.h"

namespace readthru {

class ReadThrough;
class ReplySlot;

class ReadThroughRequest final : public SlotInterceptor, public backends::ReplyTarget {
 public:
  enum class Op : uint8_t { kGet, kMget, kHget, kHmget, kHgetall };
  struct Key {
    std::string name;
    Loader* loader;  // nullptr: no loader serves it (an MGET may mix keys)
  };

  explicit ReadThroughRequest(ReadThrough* engine);
  ~ReadThroughRequest() override;

  // Prepares a fresh (or recycled) request; then the caller fills keys() and fields().
  // `registry` owns the keys' loaders: the request holds it until it finishes.
  void start(Op op, int protocol, RegistryRef registry);
  const RegistryRef& registry() const { return registry_; }
  std::vector<Key>& keys() { return keys_; }
  std::vector<std::string>& fields() { return fields_; }

  void onReply(ReplySlot* slot) override;
  // A load this request waits for has a result (called by ReadThrough, once per missing key).
  void onLoaded(size_t index, const LoadedValue& v);

  // backends::ReplyTarget, for the EXISTS check of HGET and HMGET.
  void replyData(const char* data, size_t len) override;
  bool replyDone(char type) override;
  void replyFailed(std::string_view error) override;

  static size_t liveCount();

 private:
  struct Span {
    size_t offset;
    size_t size;
  };

  void loadMissing(const std::vector<size_t>& indexes);
  void hashHit();  // the hash was in Redis: counted, and maybe refreshed ahead
  void maybeFinish();
  void finish(std::string&& reply);
  void encodeHashReply(const LoadedValue& v, std::string* out) const;

  ReadThrough* engine_;
  RegistryRef registry_;
  Op op_;
  int protocol_;
  std::vector<Key> keys_;
  std::vector<std::string> fields_;  // HGET, HMGET
  ReplySlot* slot_ = nullptr;
  std::string reply_;                                     // Redis's reply
  std::vector<Span> elements_;                            // MGET: each element's bytes in reply_
  std::vector<std::optional<std::string>> replacements_;  // MGET: loaded elements, encoded
  std::string loaded_reply_;  // GET, HGET, HMGET, HGETALL: the reply from the load
  std::string error_;         // the first load error
  std::string exists_reply_;
  size_t waiting_ = 0;
  bool starting_ = false;  // inside loadMissing: do not finish before every miss is placed
};

}  // namespace readthru
