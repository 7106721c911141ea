#!/usr/bin/env bash
# The one test command: installs what it needs, builds, and runs every test:
#   1. formatting (clang-format, the checked-in .clang-format)
#   2. the unit and integration suites on the normal build
#   3. the same suites on an AddressSanitizer + UndefinedBehaviorSanitizer build (leaks fail)
#   4. the libFuzzer targets for the request parser and the reply framer, for a bounded time
# Usage: tools/test.sh [--quick]   (--quick: step 2 only)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash tools/setup.sh

if [ $quick -eq 0 ]; then
  echo "== formatting"
  files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find resp backends proxy tests -name '*.cc' -o -name '*.h')
  clang-format --dry-run --Werror $files
fi

echo "== build and test (RelWithDebInfo)"
bash tools/build.sh build
(cd build && ctest --output-on-failure --timeout 1500)

if [ $quick -eq 1 ]; then exit 0; fi

echo "== build and test (ASan + UBSan)"
bash tools/build.sh build-asan -DREADTHRU_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --timeout 2400)

echo "== fuzz (bounded)"
cmake -S . -B build-fuzz -DREADTHRU_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target request_parser_fuzzer reply_framer_fuzzer
for f in request_parser_fuzzer reply_framer_fuzzer; do
  mkdir -p "build-fuzz/corpus-$f"
  ./build-fuzz/tests/$f -max_total_time="${FUZZ_SECONDS:-60}" "build-fuzz/corpus-$f" 2>&1 | tail -n 2
done
echo "== all tests passed"
