#include "proxy/upstream_call.h"

#include "resp/reply_encoder.h"

namespace readthru {
namespace {

// Collects one reply, then hands it to its callback: as a hiredis tree, or as bytes.
class CallTarget final : public backends::ReplyTarget {
 public:
  explicit CallTarget(UpstreamReplyCallback cb) : tree_cb_(std::move(cb)) {}
  CallTarget(UpstreamBytesCallback cb, std::string buffer)
      : bytes_cb_(std::move(cb)), bytes_(std::move(buffer)) {
    bytes_.clear();
  }
  void replyData(const char* data, size_t len) override { bytes_.append(data, len); }
  bool replyDone(char) override {
    if (bytes_cb_) {
      bytes_cb_(&bytes_);
    } else {
      redisReader* r = redisReaderCreate();
      redisReaderFeed(r, bytes_.data(), bytes_.size());
      void* reply = nullptr;
      if (redisReaderGetReply(r, &reply) != REDIS_OK) reply = nullptr;
      redisReaderFree(r);
      tree_cb_(static_cast<const redisReply*>(reply));
      if (reply != nullptr) freeReplyObject(reply);
    }
    delete this;
    return false;
  }
  void replyFailed(std::string_view) override {
    if (bytes_cb_) {
      bytes_cb_(nullptr);
    } else {
      tree_cb_(nullptr);
    }
    delete this;
  }

 private:
  UpstreamReplyCallback tree_cb_;
  UpstreamBytesCallback bytes_cb_;
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
  return callUpstreamEncoded(conn, request, std::move(cb));
}

bool callUpstreamEncoded(backends::UpstreamConn* conn, std::string_view request,
                         UpstreamReplyCallback cb) {
  if (conn == nullptr) return false;
  conn->send(request, new CallTarget(std::move(cb)));
  return true;
}

bool callUpstreamBytes(backends::UpstreamConn* conn, std::string_view request,
                       UpstreamBytesCallback cb, std::string buffer) {
  if (conn == nullptr) return false;
  conn->send(request, new CallTarget(std::move(cb), std::move(buffer)));
  return true;
}

}  // namespace readthru
