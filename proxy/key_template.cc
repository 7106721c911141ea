#include "proxy/key_template.h"

#include <fmt/format.h>

namespace readthru {
namespace {

constexpr std::string_view kInt64Max = "9223372036854775807";

bool isNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool isValidName(std::string_view name) {
  if (name.empty() || !isNameStart(name[0])) return false;
  for (char c : name) {
    if (!isNameStart(c) && !isDigit(c)) return false;
  }
  return true;
}

// The canonical decimal form of a non-negative int64 (see {name:int} in the header).
bool isCanonicalInt64(std::string_view value) {
  if (value.empty() || value.size() > kInt64Max.size()) return false;
  if (value[0] == '0') return value.size() == 1;
  for (char c : value) {
    if (!isDigit(c)) return false;
  }
  // Same length, all digits: byte order is numeric order.
  return value.size() < kInt64Max.size() || value <= kInt64Max;
}

// `text` for an error message: printable ASCII as is, anything else as \xHH.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

}  // namespace

bool KeyTemplate::parse(std::string_view text, KeyTemplate* out, std::string* error) {
  auto fail = [error](std::string message) {
    *error = std::move(message);
    return false;
  };
  if (text.empty()) return fail("empty key template");

  KeyTemplate parsed;
  parsed.text_ = text;
  size_t literal_start = 0;  // in parsed.literals_: where the literal being read began
  // Ends the literal being read: it precedes the first capture, or ends the previous one.
  auto endLiteral = [&parsed, &literal_start]() {
    Span span{literal_start, parsed.literals_.size() - literal_start};
    if (parsed.captures_.empty()) {
      parsed.prefix_ = span;
    } else {
      parsed.captures_.back().after = span;
    }
    literal_start = parsed.literals_.size();
    return span;
  };

  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const bool doubled = i + 1 < text.size() && text[i + 1] == c;
    if (c == '}') {
      if (!doubled) {
        return fail(
            fmt::format("unmatched '}}' at offset {} (write '}}}}' for a literal '}}')", i));
      }
      parsed.literals_ += '}';
      i += 2;
      continue;
    }
    if (c != '{') {
      parsed.literals_ += c;
      ++i;
      continue;
    }
    if (doubled) {
      parsed.literals_ += '{';
      i += 2;
      continue;
    }

    // A capture: "{name}" or "{name:type}".
    const size_t open = i;
    const size_t close = text.find_first_of("{}", open + 1);
    if (close == std::string_view::npos) {
      return fail(
          fmt::format("unclosed '{{' at offset {} (write '{{{{' for a literal '{{')", open));
    }
    if (text[close] == '{') {
      return fail(
          fmt::format("'{{' at offset {} inside the capture opened at offset {}", close, open));
    }
    const std::string_view body = text.substr(open + 1, close - open - 1);
    const size_t colon = body.find(':');
    const std::string_view name = body.substr(0, colon);
    if (name.empty()) return fail(fmt::format("empty capture name at offset {}", open));
    if (!isValidName(name)) {
      return fail(fmt::format(
          "invalid capture name '{}' at offset {} (letters, digits and '_', not starting with a "
          "digit)",
          printable(name), open));
    }
    CaptureType type = CaptureType::kString;
    if (colon != std::string_view::npos) {
      const std::string_view type_name = body.substr(colon + 1);
      if (type_name == "int") {
        type = CaptureType::kInt;
      } else if (type_name.empty()) {
        return fail(fmt::format("missing type after '{}:' at offset {} (the only type is 'int')",
                                name, open));
      } else {
        return fail(
            fmt::format("unknown type '{}' for capture '{}' at offset {} (the only type "
                        "is 'int')",
                        printable(type_name), name, open));
      }
    }
    for (const std::string& previous : parsed.names_) {
      if (previous == name) {
        return fail(fmt::format("duplicate capture name '{}' at offset {}", name, open));
      }
    }
    if (endLiteral().size == 0 && !parsed.captures_.empty()) {
      return fail(
          fmt::format("captures '{}' and '{}' at offset {} have no literal text between them",
                      parsed.names_.back(), name, open));
    }
    parsed.captures_.push_back(Capture{type, Span{}});
    parsed.names_.emplace_back(name);
    i = close + 1;
  }
  const Span last = endLiteral();
  if (!parsed.captures_.empty()) parsed.suffix_ = last;
  parsed.min_key_size_ = parsed.literals_.size() + parsed.captures_.size();
  *out = std::move(parsed);
  return true;
}

bool KeyTemplate::match(std::string_view key, Captures* captures) const {
  if (captures != nullptr) captures->clear();
  // The fast rejections: most keys seen here belong to no template, or to another one.
  if (key.size() < min_key_size_) return false;
  const std::string_view prefix = literal(prefix_);
  if (!key.starts_with(prefix)) return false;
  if (captures_.empty()) return key.size() == prefix.size();
  if (!key.ends_with(literal(suffix_))) return false;

  size_t pos = prefix.size();
  for (size_t i = 0; i < captures_.size(); ++i) {
    const std::string_view after = literal(captures_[i].after);
    // A capture never reaches past the next ':', so `after` must start at or before it.
    const size_t colon = key.find(':', pos);
    size_t end;
    if (after.empty()) {  // the last capture, ending the template
      if (colon != std::string_view::npos) break;
      end = key.size();
      if (end == pos) break;
    } else {
      const size_t limit = colon == std::string_view::npos ? key.size() : colon + after.size();
      end = key.substr(0, limit).find(after, pos + 1);
      if (end == std::string_view::npos) break;
    }
    const std::string_view value = key.substr(pos, end - pos);
    if (captures_[i].type == CaptureType::kInt && !isCanonicalInt64(value)) break;
    if (captures != nullptr) captures->emplace_back(names_[i], value);
    pos = end + after.size();
    if (i + 1 == captures_.size() && pos == key.size()) return true;
  }
  if (captures != nullptr) captures->clear();
  return false;
}

}  // namespace readthru
