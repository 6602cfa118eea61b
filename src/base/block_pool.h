#pragma once
// Per-thread free lists of equally sized blocks, for objects made and dropped at request rate (one
// Exchange per request, through std::allocate_shared). A block freed on another thread joins that
// thread's list; each list keeps at most kMaxFree blocks (about 256 KiB of them, and between 64 and
// 1024: what a burst leaves behind stays bounded per thread) and returns the rest to the heap.
// Sanitizer builds pass every block straight to the heap, so ASan still sees use-after-free.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace unbroken {

template <std::size_t Size>
class BlockPool {
 public:
#if defined(__SANITIZE_ADDRESS__)
  static constexpr std::size_t kMaxFree = 0;
#else
  static constexpr std::size_t kMaxFree = std::clamp<std::size_t>(256 * 1024 / Size, 64, 1024);
#endif

  static void* take() {
    List& l = list();
    if (l.head == nullptr) return ::operator new(Size);
    Free* b = l.head;
    l.head = b->next;
    --l.count;
    return b;
  }

  static void give(void* p) {
    // After the thread's list is gone (thread exit), blocks go back to the heap.
    if (t_gone || list().count >= kMaxFree) {
      ::operator delete(p);
      return;
    }
    List& l = list();
    auto* b = static_cast<Free*>(p);
    b->next = l.head;
    l.head = b;
    ++l.count;
  }

 private:
  static_assert(Size >= sizeof(void*));
  struct Free {
    Free* next;
  };
  struct List {
    Free* head = nullptr;
    std::size_t count = 0;
    ~List() {
      t_gone = true;
      while (head != nullptr) ::operator delete(std::exchange(head, head->next));
    }
  };
  static List& list() {
    thread_local List l;
    return l;
  }
  static inline thread_local bool t_gone = false;
};

// An allocator for std::allocate_shared that takes single objects from a BlockPool.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) {}  // NOLINT: rebinding is implicit by design

  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    if (n != 1) return static_cast<T*>(::operator new(n * sizeof(T)));
    return static_cast<T*>(BlockPool<sizeof(T)>::take());
  }
  void deallocate(T* p, std::size_t n) {
    if (n != 1) {
      ::operator delete(p);
      return;
    }
    BlockPool<sizeof(T)>::give(p);
  }
  friend bool operator==(const PoolAllocator&, const PoolAllocator&) { return true; }
};

// A std::unique_ptr whose object lives in a BlockPool block: for per-connection state that exists
// only for a moment (an idle connection then carries a null pointer instead of the object).
template <class T>
struct PoolDelete {
  void operator()(T* p) const {
    p->~T();
    BlockPool<sizeof(T)>::give(p);
  }
};
template <class T>
using PoolPtr = std::unique_ptr<T, PoolDelete<T>>;

template <class T, class... Args>
PoolPtr<T> make_pooled(Args&&... args) {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  void* block = BlockPool<sizeof(T)>::take();
  try {
    return PoolPtr<T>(new (block) T{std::forward<Args>(args)...});
  } catch (...) {
    BlockPool<sizeof(T)>::give(block);
    throw;
  }
}

}  // namespace unbroken
