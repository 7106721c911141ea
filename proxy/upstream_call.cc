#include "proxy/upstream_call.h"

#include "resp/reply_encoder.h"

namespace readthru {
namespace {

class CallTarget final : public backends::ReplyTarget {
 public:
  explicit CallTarget(UpstreamReplyCallback cb) : cb_(std::move(cb)) {}
  void replyData(const char* data, size_t len) override { bytes_.append(data, len); }
  bool replyDone(char) override {
    redisReader* r = redisReaderCreate();
    redisReaderFeed(r, bytes_.data(), bytes_.size());
    void* reply = nullptr;
    if (redisReaderGetReply(r, &reply) != REDIS_OK) reply = nullptr;
    redisReaderFree(r);
    cb_(static_cast<const redisReply*>(reply));
    if (reply != nullptr) freeReplyObject(reply);
    delete this;
    return false;
  }
  void replyFailed(std::string_view) override {
    cb_(nullptr);
    delete this;
  }

 private:
  UpstreamReplyCallback cb_;
  std::string bytes_;
};

}  // namespace

bool callUpstream(backends::UpstreamConn* conn, const std::vector<std::string>& argv,
                  UpstreamReplyCallback cb) {
  if (conn == nullptr) return false;
  std::string request;
  resp::ReplyEncoder e(&request, 2);
  e.arrayHeader(argv.size());
  for (const std::string& a : argv) e.bulk(a);
  conn->send(request, new CallTarget(std::move(cb)));
  return true;
}

}  // namespace readthru
