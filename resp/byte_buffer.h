#pragma once
// ByteBuffer: a growable byte array with a consumed prefix, for socket input and output. Unlike
// std::string it never zero-fills the room it reserves for a read, and an empty buffer owns no
// memory, so an idle connection costs nothing here.

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace readthru::resp {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&& o) noexcept { swap(o); }
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~ByteBuffer() { free(data_); }

  // Unread bytes.
  const char* data() const { return data_ + start_; }
  char* data() { return data_ + start_; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  std::string_view view() const { return {data(), size()}; }
  size_t capacity() const { return cap_; }

  void append(const char* p, size_t n) {
    if (n == 0) return;  // memcpy into a null (empty) buffer is undefined even for 0 bytes
    std::memcpy(prepareAppend(n), p, n);
    end_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }

  // Room for at least `n` more bytes at the end; write into it, then commit() what was written.
  char* prepareAppend(size_t n) {
    if (cap_ - end_ < n) grow(n);
    return data_ + end_;
  }
  void commit(size_t n) { end_ += n; }
  size_t tailroom() const { return cap_ - end_; }

  // Drops `n` bytes from the front. Cheap: the bytes are only skipped until the next growth.
  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }
  void clear() { start_ = end_ = 0; }
  // Frees the memory too (an idle connection keeps none).
  void release() {
    free(data_);
    data_ = nullptr;
    cap_ = start_ = end_ = 0;
  }
  void swap(ByteBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(cap_, o.cap_);
    std::swap(start_, o.start_);
    std::swap(end_, o.end_);
  }

 private:
  void grow(size_t n) {
    // Move the unread bytes to the front first; grow only if that is not enough.
    if (start_ > 0) {
      std::memmove(data_, data_ + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
      if (cap_ - end_ >= n) return;
    }
    // Double for many small appends; a large reservation (a 100 MB bulk) gets exactly its size.
    size_t want = end_ + n;
    size_t cap = cap_ < 32 ? 64 : cap_ * 2;
    if (cap < want) cap = want;
    char* p = static_cast<char*>(realloc(data_, cap));
    if (p == nullptr) abort();  // out of memory is fatal, as in redis-server's zmalloc
    data_ = p;
    cap_ = cap;
  }

  char* data_ = nullptr;
  size_t cap_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace readthru::resp
