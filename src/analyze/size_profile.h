#pragma once
// The size each path is served at in full, learned from its successful GETs, so that a 200 with fewer
// bytes can be told for what it is: a download the client abandoned (nginx logs those as 200 with a
// short $body_bytes_sent). Bounded: paths are kept in a Space-Saving table, a few sizes each.

#include <array>
#include <cstdint>
#include <string_view>

#include "analyze/entry.h"
#include "analyze/space_saving.h"

namespace unbroken::analyze {

class SizeProfile {
 public:
  static constexpr std::size_t kPathCapacity = 4096;
  // A path has a full size when its largest 200 size was seen at least this often, and in at least
  // 1/kMinShare of its 200s: one large outlier of a dynamic page is no full size.
  static constexpr std::uint64_t kMinFull = 3;
  static constexpr std::uint64_t kMinShare = 5;

  enum class Verdict : std::uint8_t { kNotJudged, kFull, kCut };

  SizeProfile() : paths_(kPathCapacity) {}

  // Counts the size of e when it is a GET answered 200 with its bytes logged; anything else is ignored.
  void learn(const Entry& e);
  // Whether e, a 200 to a GET, was served in full, cut short, or cannot be judged: its path has no
  // full size (too few samples, a size that varies), or its own size recurs too often to be a cut (a
  // second variant of the page, a compressed copy).
  [[nodiscard]] Verdict judge(const Entry& e) const;
  // Paths currently held that have a full size.
  [[nodiscard]] std::size_t sized_paths() const;

 private:
  static constexpr std::size_t kSizes = 4;
  struct Sizes {
    std::int64_t max = -1;
    std::uint64_t max_count = 0;
    std::uint64_t n = 0;
    // The most frequent other sizes, Space-Saving style: a full slot set gives its rarest to a newcomer.
    std::array<std::int64_t, kSizes> size{};
    std::array<std::uint64_t, kSizes> count{};
  };
  [[nodiscard]] static bool has_full_size(const Sizes& s) {
    return s.max_count >= kMinFull && s.max_count * kMinShare >= s.n;
  }
  [[nodiscard]] static bool candidate(const Entry& e) {
    // 200 only: a 206's size is the range's, not the file's.
    return e.download() && e.status == 200 && e.bytes_out >= 0 && !e.path.empty();
  }

  SpaceSaving<Sizes> paths_;
};

}  // namespace unbroken::analyze
