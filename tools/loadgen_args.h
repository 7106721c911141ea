#pragma once
// What the benchmark load generators (readthru_loadgen, writer_loadgen) share: "--key value"
// options after the mode, and dying with a message naming the program.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace loadgen {

// Set by main: the program name in error messages.
inline const char* g_program = "loadgen";

[[noreturn]] inline void Die(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", g_program, msg.c_str());
  std::exit(1);
}

class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 2; i < argc; i += 2) {
      std::string k = argv[i];
      if (k.rfind("--", 0) != 0 || i + 1 >= argc) Die("bad argument: " + k);
      kv_[k.substr(2)] = argv[i + 1];
    }
  }
  std::string Str(const std::string& k, const char* def = nullptr) {
    auto it = kv_.find(k);
    if (it != kv_.end()) {
      used_.push_back(k);
      return it->second;
    }
    if (def == nullptr) Die("missing --" + k);
    return def;
  }
  long long Int(const std::string& k, const char* def = nullptr) {
    std::string s = Str(k, def);
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0') Die("--" + k + " needs an integer, got '" + s + "'");
    return v;
  }
  double Dbl(const std::string& k, const char* def = nullptr) {
    std::string s = Str(k, def);
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') Die("--" + k + " needs a number, got '" + s + "'");
    return v;
  }
  bool Has(const std::string& k) const { return kv_.count(k) != 0; }
  void CheckAllUsed() const {
    for (const auto& [k, v] : kv_) {
      if (std::find(used_.begin(), used_.end(), k) == used_.end()) Die("unknown option --" + k);
    }
  }

 private:
  std::map<std::string, std::string> kv_;
  std::vector<std::string> used_;
};

}  // namespace loadgen
