#include "net/tls_alloc.h"

#include <openssl/crypto.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace unbroken::net {
namespace {

// Every block carries its size in front (16 bytes, so the block keeps malloc's alignment). Blocks
// of up to kSmall bytes are all kSmall big, and go back to the freeing thread's list.
constexpr std::size_t kHeader = 16;
constexpr std::size_t kSmall = 64;
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kMaxCached = 0;  // every block back to malloc, where ASan watches it
#else
constexpr std::size_t kMaxCached = 64;  // per thread: 5 KiB at most
#endif

struct FreeBlock {
  FreeBlock* next;
};

// Plain data, so it can still be used while the thread exits (OpenSSL frees its thread state
// then, after the guard below ran): once `dead`, blocks go straight back to malloc.
struct Cache {
  FreeBlock* head;
  std::size_t count;
  bool dead;
};
thread_local Cache t_cache{nullptr, 0, false};

struct CacheGuard {
  ~CacheGuard() {
    t_cache.dead = true;
    while (FreeBlock* b = t_cache.head) {
      t_cache.head = b->next;
      std::free(reinterpret_cast<char*>(b) - kHeader);
    }
    t_cache.count = 0;
  }
};
thread_local CacheGuard t_guard;

std::size_t& size_of(void* block) {
  return *reinterpret_cast<std::size_t*>(static_cast<char*>(block) - kHeader);
}

void* allocate(std::size_t n, const char*, int) {
  if (n <= kSmall && t_cache.head != nullptr) {
    FreeBlock* b = t_cache.head;
    t_cache.head = b->next;
    --t_cache.count;
    return b;
  }
  if (n <= kSmall) {
    (void)&t_guard;  // constructed on the thread's first small block, so its destructor runs
    n = kSmall;
  }
  char* base = static_cast<char*>(std::malloc(kHeader + n));
  if (base == nullptr) return nullptr;
  *reinterpret_cast<std::size_t*>(base) = n;
  return base + kHeader;
}

void release(void* block, const char*, int) {
  if (block == nullptr) return;
  if (size_of(block) == kSmall && !t_cache.dead && t_cache.count < kMaxCached) {
    auto* b = static_cast<FreeBlock*>(block);
    b->next = t_cache.head;
    t_cache.head = b;
    ++t_cache.count;
    return;
  }
  std::free(static_cast<char*>(block) - kHeader);
}

void* reallocate(void* block, std::size_t n, const char* file, int line) {
  if (block == nullptr) return allocate(n, file, line);
  std::size_t old = size_of(block);
  if (n <= old && old == kSmall) return block;
  void* fresh = allocate(n, file, line);
  if (fresh == nullptr) return nullptr;
  std::memcpy(fresh, block, old < n ? old : n);
  release(block, file, line);
  return fresh;
}

}  // namespace

bool install_tls_allocator() {
  return CRYPTO_set_mem_functions(allocate, reallocate, release) == 1;
}

}  // namespace unbroken::net
