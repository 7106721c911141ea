// The README's command-routing table is documentation users rely on: every row must say what the
// router really does with that example command.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/command_router.h"

namespace {

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

}  // namespace

TEST_CASE("README command-routing table matches the router") {
  std::ifstream readme(READTHRU_SOURCE_DIR "/README.md");
  REQUIRE(readme.good());
  std::string line;
  bool in_section = false;
  int rows = 0;
  while (std::getline(readme, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Command routing";
    if (!in_section || line.rfind("| `", 0) != 0) continue;
    size_t a = line.find('`');
    size_t b = line.find('`', a + 1);
    std::string example = line.substr(a + 1, b - a - 1);
    size_t c1 = line.find('|', b);
    size_t c2 = line.find('|', c1 + 1);
    std::string route = words(line.substr(c1 + 1, c2 - c1 - 1)).at(0);
    std::vector<std::string> args = words(example);
    std::vector<std::string_view> argv(args.begin(), args.end());
    readthru::RouteDecision d = readthru::routeCommand(argv);
    CAPTURE(example);
    if (route == "local") {
      CHECK(d.route == readthru::Route::kLocal);
    } else if (route == "pinned") {
      CHECK(d.route == readthru::Route::kPin);
    } else {
      REQUIRE(route == "shared");
      CHECK(d.route == readthru::Route::kShared);
    }
    ++rows;
  }
  CHECK(rows >= 30);
}
