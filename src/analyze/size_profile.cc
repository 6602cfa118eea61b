#include "analyze/size_profile.h"

#include <algorithm>

namespace unbroken::analyze {

void SizeProfile::learn(const Entry& e) {
  if (!candidate(e)) return;
  Sizes& s = paths_.add(e.path);
  s.n += 1;
  const std::int64_t b = e.bytes_out;
  if (b == s.max) {
    s.max_count += 1;
    return;
  }
  if (b > s.max) {
    // The old maximum becomes one of the other sizes: a file that grew keeps its old size as a variant.
    std::int64_t old = s.max;
    std::uint64_t old_count = s.max_count;
    s.max = b;
    s.max_count = 1;
    if (old < 0) return;
    auto at = static_cast<std::size_t>(std::min_element(s.count.begin(), s.count.end()) - s.count.begin());
    s.size[at] = old;
    s.count[at] = old_count;
    return;
  }
  for (std::size_t i = 0; i < kSizes; ++i) {
    if (s.count[i] > 0 && s.size[i] == b) {
      s.count[i] += 1;
      return;
    }
  }
  auto at = static_cast<std::size_t>(std::min_element(s.count.begin(), s.count.end()) - s.count.begin());
  // Starts from one, not from the evicted count: cut sizes are all different and would otherwise
  // inherit their way up to look like a variant; a real variant recurs and keeps its slot.
  s.size[at] = b;
  s.count[at] = 1;
}

SizeProfile::Verdict SizeProfile::judge(const Entry& e) const {
  if (!candidate(e)) return Verdict::kNotJudged;
  const auto* c = paths_.get(e.path);
  if (c == nullptr || !has_full_size(c->aux)) return Verdict::kNotJudged;
  const Sizes& s = c->aux;
  if (e.bytes_out >= s.max) return Verdict::kFull;
  for (std::size_t i = 0; i < kSizes; ++i) {
    // A smaller size served as often as a full one counts is a variant, not a cut.
    if (s.size[i] == e.bytes_out && s.count[i] >= kMinFull && s.count[i] * kMinShare >= s.n) {
      return Verdict::kNotJudged;
    }
  }
  return Verdict::kCut;
}

std::size_t SizeProfile::sized_paths() const {
  return static_cast<std::size_t>(std::count_if(paths_.counters().begin(), paths_.counters().end(),
                                                [](const auto& c) { return has_full_size(c.aux); }));
}

}  // namespace unbroken::analyze
