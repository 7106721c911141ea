#pragma once
// Glob matching as Redis does it for KEYS, SCAN MATCH and ACL key patterns (redis's
// stringmatchlen, case-sensitive), written anew:
//   *      any run of bytes, also none
//   ?      any one byte
//   [abc]  one of the bytes listed; [^abc] none of them; [a-z] a range (either way round);
//          \x inside brackets is x itself. A ']' closes the class only where it does not end a
//          range: in "[a-]x" the range is ']'..'a' and the class runs on. A class that is never
//          closed runs to the end of the pattern; "[]" matches nothing, "[^]" any byte.
//   \x     x itself; a '\' at the very end is a literal '\'
// Bytes compare as unsigned (redis compares chars, signed on x86: only ranges with bytes over
// 0x7f can differ). Matching takes O(pattern x text) time at worst, without recursion.

#include <string_view>

namespace readthru::resp {

bool globMatch(std::string_view pattern, std::string_view text);

}  // namespace readthru::resp
