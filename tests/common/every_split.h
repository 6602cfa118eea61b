#pragma once
// How the house feeds a parser in its table tests: the input whole, split in two at every byte
// position, and one byte at a time. A parser whose result depends on how TCP cut the stream has a
// smuggling bug, so every way must give the same result.

#include <string>
#include <vector>

namespace unbroken::testing {

inline std::vector<std::vector<std::string>> every_split(const std::string& in) {
  std::vector<std::vector<std::string>> ways{{in}};
  for (std::size_t i = 1; i < in.size(); ++i) ways.push_back({in.substr(0, i), in.substr(i)});
  std::vector<std::string> bytes;
  for (char c : in) bytes.emplace_back(1, c);
  ways.push_back(bytes);
  return ways;
}

}  // namespace unbroken::testing
