#pragma once
// Keeps departures out of the operational log's way. Clients leaving is normal in production: the
// access log has every record; stderr gets the first occurrence of each kind (outcome and route) in
// full, then at most one summary line per kind and interval, never a line per event.

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "http/record.h"

namespace unbroken::observe {

class NoiseControl {
 public:
  explicit NoiseControl(std::chrono::milliseconds interval);
  ~NoiseControl();  // writes the last summary
  NoiseControl(const NoiseControl&) = delete;
  NoiseControl& operator=(const NoiseControl&) = delete;

  // Any thread. Answered requests are ignored.
  void observe(const http::RequestRecord& rec);

 private:
  void run();
  void summarize();

  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  // (outcome, route) -> events since the last summary. Bounded: outcomes x registered routes.
  std::map<std::pair<http::Outcome, std::string>, std::uint64_t> counts_;
  std::thread thread_;
};

}  // namespace unbroken::observe
