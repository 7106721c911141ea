// hiredis_client: a real hiredis (0.14, synchronous API) client for the integration tests.
//
//   hiredis_client HOST PORT [--prefix=P]    run the scripted checks (keys start with P, default
//                                            "hiredis:"); exit 0 when all pass
//   hiredis_client HOST PORT CMD [ARG ...]   run one command and print its reply (redis-cli style)
//
// The checks print one line each and stop at the first mismatch with exit code 1; a connection
// or I/O error exits 2. A test client with its own networking, not part of readthru.

#include <hiredis/hiredis.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

redisContext* g_ctx = nullptr;
int g_checks = 0;
std::string g_prefix = "hiredis:";  // --prefix=P: lets several runs share one server

std::string key(const std::string& name) { return g_prefix + name; }

[[noreturn]] void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("FAIL: ", stdout);
  std::vprintf(fmt, ap);
  std::fputc('\n', stdout);
  va_end(ap);
  std::fflush(stdout);
  std::exit(1);
}

[[noreturn]] void ioFail(const char* what) {
  std::printf("IOERR: %s: %s\n", what, g_ctx != nullptr ? g_ctx->errstr : "no context");
  std::fflush(stdout);
  std::exit(2);
}

void pass(const char* name) {
  ++g_checks;
  std::printf("ok %d %s\n", g_checks, name);
}

// Owns one reply.
struct Reply {
  redisReply* r = nullptr;
  explicit Reply(void* p) : r(static_cast<redisReply*>(p)) {}
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply() {
    if (r != nullptr) freeReplyObject(r);
  }
  redisReply* operator->() const { return r; }
};

Reply command(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* r = redisCommandArgv(g_ctx, static_cast<int>(args.size()), argv.data(), lens.data());
  if (r == nullptr) ioFail(args.empty() ? "command" : args[0].c_str());
  return Reply(r);
}

Reply getReply(const char* what) {
  void* r = nullptr;
  if (redisGetReply(g_ctx, &r) != REDIS_OK || r == nullptr) ioFail(what);
  return Reply(r);
}

std::string str(const redisReply* r) { return std::string(r->str, r->len); }

void expectStatus(const Reply& r, const char* want, const char* name) {
  if (r->type != REDIS_REPLY_STATUS || str(r.r) != want)
    fail("%s: want status %s, got type %d '%.*s'", name, want, r->type,
         r->type == REDIS_REPLY_INTEGER ? 0 : static_cast<int>(r->len), r->str);
}

void expectString(const Reply& r, const std::string& want, const char* name) {
  if (r->type != REDIS_REPLY_STRING) fail("%s: want a bulk string, got type %d", name, r->type);
  if (str(r.r) != want)
    fail("%s: bulk of %zu bytes differs from the %zu bytes sent", name, static_cast<size_t>(r->len),
         want.size());
}

void expectInteger(const Reply& r, long long want, const char* name) {
  if (r->type != REDIS_REPLY_INTEGER || r->integer != want)
    fail("%s: want integer %lld, got type %d value %lld", name, want, r->type,
         r->type == REDIS_REPLY_INTEGER ? r->integer : 0LL);
}

void checkPing() {
  Reply r(redisCommand(g_ctx, "PING"));
  if (r.r == nullptr) ioFail("PING");
  expectStatus(r, "PONG", "ping");
  pass("ping");
}

void checkBinarySetGet() {
  const std::string key("bin\r\nkey\0with nul", 17);
  std::string value;
  for (int round = 0; round < 4; ++round)
    for (int b = 0; b < 256; ++b) value.push_back(static_cast<char>(b));
  value += std::string("\r\n$5\r\nfake\r\n\0\0", 14);
  {
    Reply r(redisCommand(g_ctx, "SET %b %b", key.data(), key.size(), value.data(), value.size()));
    if (r.r == nullptr) ioFail("SET binary");
    expectStatus(r, "OK", "set binary");
  }
  {
    Reply r(redisCommand(g_ctx, "GET %b", key.data(), key.size()));
    if (r.r == nullptr) ioFail("GET binary");
    expectString(r, value, "get binary");
  }
  {
    Reply r(redisCommand(g_ctx, "STRLEN %b", key.data(), key.size()));
    if (r.r == nullptr) ioFail("STRLEN binary");
    expectInteger(r, static_cast<long long>(value.size()), "strlen binary");
  }
  pass("binary key and value with NUL and CRLF");
}

void checkNilAndErrors() {
  Reply nil = command({"GET", key("missing")});
  if (nil->type != REDIS_REPLY_NIL) fail("get missing: want nil, got type %d", nil->type);
  command({"SET", key("str"), "x"});
  Reply wrong = command({"LPUSH", key("str"), "y"});
  if (wrong->type != REDIS_REPLY_ERROR || std::strncmp(wrong->str, "WRONGTYPE ", 10) != 0)
    fail("lpush on a string: want -WRONGTYPE, got type %d", wrong->type);
  Reply unknown = command({"NOSUCHCMD"});
  if (unknown->type != REDIS_REPLY_ERROR ||
      std::strncmp(unknown->str, "ERR unknown command", 19) != 0)
    fail("unknown command: want -ERR unknown command, got type %d", unknown->type);
  pass("nil and error replies");
}

// 1000 commands appended, then read back: every reply must be the one for its own command.
void checkPipeline() {
  constexpr int kCount = 1000;
  const std::string counter = key("counter");
  const std::string list = key("list");
  command({"DEL", counter, list});
  for (int i = 0; i < kCount; ++i) {
    const std::string k = key("p:" + std::to_string(i / 4));
    const std::string v = "value-" + std::to_string(i / 4) + std::string(i % 50, 'x');
    int rc = REDIS_OK;
    switch (i % 4) {
      case 0:
        rc = redisAppendCommand(g_ctx, "SET %b %b", k.data(), k.size(), v.data(), v.size());
        break;
      case 1:
        rc = redisAppendCommand(g_ctx, "GET %b", k.data(), k.size());
        break;
      case 2:
        rc = redisAppendCommand(g_ctx, "INCR %b", counter.data(), counter.size());
        break;
      default:
        rc = redisAppendCommand(g_ctx, "RPUSH %b %d", list.data(), list.size(), i);
        break;
    }
    if (rc != REDIS_OK) ioFail("redisAppendCommand");
  }
  for (int i = 0; i < kCount; ++i) {
    Reply r = getReply("pipeline reply");
    char name[64];
    std::snprintf(name, sizeof name, "pipeline reply %d", i);
    switch (i % 4) {
      case 0:
        expectStatus(r, "OK", name);
        break;
      case 1:
        expectString(r, "value-" + std::to_string(i / 4) + std::string((i - 1) % 50, 'x'), name);
        break;
      case 2:
        expectInteger(r, i / 4 + 1, name);
        break;
      default:
        expectInteger(r, i / 4 + 1, name);
        break;
    }
  }
  pass("pipeline of 1000 commands read back in order");
}

void checkAggregates() {
  command({"DEL", key("h"), key("l")});
  command({"HSET", key("h"), "f1", "v1", "f2", "v2"});
  Reply h = command({"HGETALL", key("h")});
  if (h->type != REDIS_REPLY_ARRAY || h->elements != 4) fail("hgetall: want an array of 4");
  Reply exec_ok = command({"MULTI"});
  expectStatus(exec_ok, "OK", "multi");
  expectStatus(command({"RPUSH", key("l"), "a", "b"}), "QUEUED", "queued rpush");
  expectStatus(command({"LRANGE", key("l"), "0", "-1"}), "QUEUED", "queued lrange");
  Reply exec = command({"EXEC"});
  if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 2) fail("exec: want an array of 2");
  if (exec->element[0]->type != REDIS_REPLY_INTEGER || exec->element[0]->integer != 2)
    fail("exec[0]: want :2");
  const redisReply* list = exec->element[1];
  if (list->type != REDIS_REPLY_ARRAY || list->elements != 2 || str(list->element[0]) != "a" ||
      str(list->element[1]) != "b")
    fail("exec[1]: want [a, b]");
  Reply info = command({"COMMAND", "INFO", "GET"});  // nested 4 deep: within hiredis 0.14's limit
  if (info->type != REDIS_REPLY_ARRAY || info->elements != 1) fail("command info get");
  pass("arrays, transactions and nested replies");
}

void checkLargeValue() {
  std::string big(4 * 1024 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  {
    const std::string k = key("big");
    Reply r(redisCommand(g_ctx, "SET %b %b", k.data(), k.size(), big.data(), big.size()));
    if (r.r == nullptr) ioFail("SET big");
    expectStatus(r, "OK", "set big");
  }
  Reply r = command({"GET", key("big")});
  expectString(r, big, "get big");
  pass("4 MB value round trip");
}

void printReply(const redisReply* r, int indent) {
  const std::string pad(static_cast<size_t>(indent) * 2, ' ');
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      std::printf("%s%.*s\n", pad.c_str(), static_cast<int>(r->len), r->str);
      break;
    case REDIS_REPLY_ERROR:
      std::printf("%s(error) %.*s\n", pad.c_str(), static_cast<int>(r->len), r->str);
      break;
    case REDIS_REPLY_INTEGER:
      std::printf("%s(integer) %lld\n", pad.c_str(), r->integer);
      break;
    case REDIS_REPLY_NIL:
      std::printf("%s(nil)\n", pad.c_str());
      break;
    case REDIS_REPLY_STRING:
      std::printf("%s\"", pad.c_str());
      std::fwrite(r->str, 1, r->len, stdout);
      std::printf("\"\n");
      break;
    case REDIS_REPLY_ARRAY:
      std::printf("%s(array of %zu)\n", pad.c_str(), static_cast<size_t>(r->elements));
      for (size_t i = 0; i < r->elements; ++i) printReply(r->element[i], indent + 1);
      break;
    default:
      std::printf("%s(type %d)\n", pad.c_str(), r->type);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s HOST PORT [CMD ARG ...]\n", argv[0]);
    return 64;
  }
  timeval timeout{10, 0};
  g_ctx = redisConnectWithTimeout(argv[1], std::atoi(argv[2]), timeout);
  if (g_ctx == nullptr || g_ctx->err != 0) ioFail("connect");
  if (redisSetTimeout(g_ctx, timeout) != REDIS_OK) ioFail("set timeout");

  int rc = 0;
  if (argc == 4 && std::strncmp(argv[3], "--prefix=", 9) == 0) {
    g_prefix = argv[3] + 9;
    argc = 3;
  }
  if (argc > 3) {
    std::vector<std::string> args(argv + 3, argv + argc);
    Reply r = command(args);
    printReply(r.r, 0);
    rc = r->type == REDIS_REPLY_ERROR ? 3 : 0;
  } else {
    checkPing();
    checkBinarySetGet();
    checkNilAndErrors();
    checkPipeline();
    checkAggregates();
    checkLargeValue();
    std::printf("all %d checks passed\n", g_checks);
  }
  redisFree(g_ctx);
  return rc;
}
