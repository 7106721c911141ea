#pragma once
// RegistryRef: a counted reference to one generation of the CacheRegistry (its backends, loaders
// and writers). A configuration reload makes a new registry current; the one it replaces must
// live on until nothing still works with its objects: a load in flight holds its Loader, a reply
// slot watching for a nil holds a Loader until the reply comes, a write-through holds its Writer,
// a write-behind flusher its Writer until its cycle ends. Each of those holds a RegistryRef.
//
//   Server ----------- ref (the current registry)
//   Flight, ReadThroughRequest, ReplySlot (nil watch), WriteThroughRequest, Flusher -- refs
//   last ref dropped -> the registry closes its backends and frees itself once they are closed
//
// Ownership: a registry handed to a RegistryRef must have been allocated with new; from then on
// the refs own it. Loop thread only: the count is not atomic. Dropping the last ref never frees
// the registry's loaders and writers on the spot when it has backends (they go in a uv_close
// callback), so a caller may finish using a Loader it looked at before dropping its ref.

#include <utility>

namespace readthru {

class CacheRegistry;

class RegistryRef {
 public:
  RegistryRef() = default;
  explicit RegistryRef(CacheRegistry* registry) : registry_(registry) { acquire(); }
  RegistryRef(const RegistryRef& other) : registry_(other.registry_) { acquire(); }
  RegistryRef(RegistryRef&& other) noexcept : registry_(std::exchange(other.registry_, nullptr)) {}
  RegistryRef& operator=(RegistryRef other) noexcept {
    std::swap(registry_, other.registry_);
    return *this;
  }
  ~RegistryRef() { reset(); }

  void reset() {
    CacheRegistry* r = std::exchange(registry_, nullptr);
    if (r != nullptr) release(r);
  }
  CacheRegistry* get() const { return registry_; }
  CacheRegistry* operator->() const { return registry_; }
  CacheRegistry& operator*() const { return *registry_; }
  explicit operator bool() const { return registry_ != nullptr; }

 private:
  void acquire();
  static void release(CacheRegistry* registry);

  CacheRegistry* registry_ = nullptr;
};

}  // namespace readthru
