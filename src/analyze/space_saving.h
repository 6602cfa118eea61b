#pragma once
// Space-Saving (Metwally, Agrawal, El Abbadi 2005): the heaviest keys of an unbounded stream in k
// counters. A key not being counted takes over the smallest counter and inherits its count as its
// error, so every count is an overestimate by at most `error`, and error <= N/k for N added in all.
// Any key whose true weight exceeds N/k is guaranteed to be held. Memory is fixed at k keys whatever
// the number of distinct keys (a million clients cost what ten thousand do).

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace unbroken::analyze {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class Aux>
class SpaceSaving {
 public:
  struct Counter {
    std::string key;
    std::uint64_t count = 0;
    std::uint64_t error = 0;  // count - error <= true weight <= count
    Aux aux{};                // accumulated since this key took the counter
  };

  explicit SpaceSaving(std::size_t capacity) : capacity_(capacity) {
    counters_.reserve(capacity);
    heap_.reserve(capacity);
    pos_.reserve(capacity);
    std::size_t size = 16;
    while (size < capacity * 4) size *= 2;  // load at most 1/4: probes stay short
    table_.assign(size, Bucket{0, 0});
    mask_ = size - 1;
  }

  // Adds weight to key and returns its counter's aux, to be updated by the caller.
  Aux& add(std::string_view key, std::uint64_t weight = 1) {
    total_ += weight;
    const std::size_t h = StringHash{}(key);
    if (std::size_t at = find(key, h); at != kNone) {
      std::uint32_t slot = table_[at].slot - 1;
      Counter& c = counters_[slot];
      c.count += weight;
      std::uint32_t pos = pos_[slot];
      heap_[pos].count = c.count;
      sift_down(pos);
      return c.aux;
    }
    if (counters_.size() < capacity_) {
      auto slot = static_cast<std::uint32_t>(counters_.size());
      counters_.push_back(Counter{std::string(key), weight, 0, Aux{}});
      insert(h, slot);
      heap_.push_back(HeapEntry{weight, slot});
      pos_.push_back(static_cast<std::uint32_t>(heap_.size() - 1));
      sift_up(heap_.size() - 1);
      return counters_[slot].aux;
    }
    // Evict the minimum: the newcomer inherits its count as the error bound.
    std::uint32_t slot = heap_[0].slot;
    Counter& c = counters_[slot];
    erase(find(c.key, StringHash{}(c.key)));
    c.key.assign(key);
    c.error = c.count;
    c.count += weight;
    c.aux = Aux{};
    insert(h, slot);
    heap_[0].count = c.count;
    sift_down(0);
    evicted_ = true;
    return c.aux;
  }

  // Counters sorted by `less` descending (the heaviest first), at most n.
  template <class Key>
  std::vector<const Counter*> top(std::size_t n, Key key) const {
    std::vector<const Counter*> out;
    out.reserve(counters_.size());
    for (const Counter& c : counters_) out.push_back(&c);
    auto by = [&](const Counter* a, const Counter* b) {
      auto ka = key(*a), kb = key(*b);
      return ka != kb ? ka > kb : a->key < b->key;
    };
    if (out.size() > n) {
      std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), by);
      out.resize(n);
    } else {
      std::sort(out.begin(), out.end(), by);
    }
    return out;
  }

  // The counter key holds, or nullptr when it is not being counted.
  [[nodiscard]] const Counter* get(std::string_view key) const {
    std::size_t at = find(key, StringHash{}(key));
    return at == kNone ? nullptr : &counters_[table_[at].slot - 1];
  }

  [[nodiscard]] const std::vector<Counter>& counters() const { return counters_; }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::uint64_t total() const { return total_; }
  // The guaranteed bound on any count's overestimate: 0 while no key was ever evicted.
  [[nodiscard]] std::uint64_t max_error() const { return evicted_ && !heap_.empty() ? heap_[0].count : 0; }

 private:
  // The key index: open addressing with linear probing over a flat array, so that a lookup is one
  // or two cache lines rather than a node chase, and an eviction allocates nothing.
  struct Bucket {
    std::uint32_t hash;  // low bits of the key's hash, to skip most key comparisons
    std::uint32_t slot;  // counter slot + 1; 0 marks an empty bucket
  };
  static constexpr std::size_t kNone = ~std::size_t{0};

  std::size_t find(std::string_view key, std::size_t h) const {
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Bucket& b = table_[i];
      if (b.slot == 0) return kNone;
      if (b.hash == static_cast<std::uint32_t>(h) && counters_[b.slot - 1].key == key) return i;
    }
  }
  void insert(std::size_t h, std::uint32_t slot) {
    std::size_t i = h & mask_;
    while (table_[i].slot != 0) i = (i + 1) & mask_;
    table_[i] = Bucket{static_cast<std::uint32_t>(h), slot + 1};
  }
  // Backward-shift deletion: later entries of the probe run move up, so no tombstones pile up.
  void erase(std::size_t i) {
    for (std::size_t j = (i + 1) & mask_; table_[j].slot != 0; j = (j + 1) & mask_) {
      std::size_t home = table_[j].hash & mask_;
      // Move j into the hole at i unless its home lies cyclically in (i, j].
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        table_[i] = table_[j];
        i = j;
      }
    }
    table_[i] = Bucket{0, 0};
  }

  // The count is copied into the heap so that sifting reads one array, not counters_ at random.
  struct HeapEntry {
    std::uint64_t count;
    std::uint32_t slot;
  };
  bool less(std::size_t a, std::size_t b) const { return heap_[a].count < heap_[b].count; }
  void swap_at(std::size_t a, std::size_t b) {
    std::swap(heap_[a], heap_[b]);
    pos_[heap_[a].slot] = static_cast<std::uint32_t>(a);
    pos_[heap_[b].slot] = static_cast<std::uint32_t>(b);
  }
  void sift_up(std::size_t i) {
    while (i > 0 && less(i, (i - 1) / 2)) {
      swap_at(i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
  }
  void sift_down(std::size_t i) {
    for (;;) {
      std::size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < heap_.size() && less(l, m)) m = l;
      if (r < heap_.size() && less(r, m)) m = r;
      if (m == i) return;
      swap_at(i, m);
      i = m;
    }
  }

  std::size_t capacity_;
  std::uint64_t total_ = 0;
  bool evicted_ = false;
  std::vector<Counter> counters_;
  std::vector<HeapEntry> heap_;     // min-heap of counter slots by count
  std::vector<std::uint32_t> pos_;  // slot -> index in heap_
  std::vector<Bucket> table_;
  std::size_t mask_ = 0;
};

}  // namespace unbroken::analyze
