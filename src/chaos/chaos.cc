#include "chaos/chaos.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "chaos/runner.h"

namespace unbroken::chaos {

Runner::Runner(const ChaosConfig& cfg, net::EventLoop& loop) : cfg_(cfg), loop_(loop), rng_(cfg.seed) {
  report_.target = cfg.url;
  report_.connections = cfg.connections;
  report_.seed = cfg.seed;
  std::vector<Kind> kinds = assign_clients(cfg.weights, cfg.connections);
  clients_.reserve(kinds.size());
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    ++stats(kinds[i]).clients;
    clients_.push_back(std::make_unique<Client>(*this, kinds[i], cfg.seed * 1'000'003 + i));
  }
}

Runner::~Runner() = default;

net::TimePoint Runner::reserve_start() {
  net::TimePoint now = loop_.now();
  if (cfg_.rate <= 0) return now;
  net::TimePoint at = std::max(now, next_start_);
  next_start_ = at + std::chrono::duration_cast<net::Clock::duration>(std::chrono::duration<double>(1.0 / cfg_.rate));
  return at;
}

void Runner::good_sent() {
  // The first request after a stretch with none waiting starts the clock of the longest wait.
  if (good_outstanding_++ == 0) last_answer_ = std::max(last_answer_, net::Clock::now());
}

void Runner::good_answered() {
  net::TimePoint now = net::Clock::now();
  double wait = std::chrono::duration<double, std::milli>(now - last_answer_).count();
  report_.good.longest_wait_ms = std::max(report_.good.longest_wait_ms, wait);
  last_answer_ = now;
  if (good_outstanding_ > 0) --good_outstanding_;
}

void Runner::good_abandoned() {
  if (good_outstanding_ > 0) --good_outstanding_;
}

void Runner::run(bool progress) {
  running_ = true;
  started_ = last_answer_ = net::Clock::now();
  next_start_ = loop_.now();
  for (auto& c : clients_) c->begin();
  loop_.run_after(cfg_.duration, [this] { stop(); });
  net::EventLoop::TimerId ticker = 0;
  if (progress) ticker = loop_.run_every(std::chrono::seconds(1), [this] { print_progress(false); });
  loop_.run();
  if (ticker != 0) {
    loop_.cancel_timer(ticker);
    print_progress(true);
  }
}

void Runner::stop() {
  net::TimePoint now = net::Clock::now();
  // Good requests still waiting at the end: the time since the last answer counts as a wait.
  if (good_outstanding_ > 0) {
    double wait = std::chrono::duration<double, std::milli>(now - last_answer_).count();
    report_.good.longest_wait_ms = std::max(report_.good.longest_wait_ms, wait);
  }
  running_ = false;
  report_.seconds = std::chrono::duration<double>(now - started_).count();
  for (auto& c : clients_) c->end_of_run();
  loop_.stop();
}

void Runner::print_progress(bool last) {
  double secs = std::chrono::duration<double>(net::Clock::now() - started_).count();
  std::uint64_t attempts = 0;
  for (std::size_t k = 1; k < kKindCount; ++k) attempts += report_.kinds[k].attempts;
  std::fprintf(stderr, "\r%5.0fs  good: %llu answered (%.0f/s), %llu errors  misbehaving attempts: %llu   %s", secs,
               static_cast<unsigned long long>(report_.good.requests),
               secs > 0 ? static_cast<double>(report_.good.requests) / secs : 0.0,
               static_cast<unsigned long long>(report_.good.error_count()), static_cast<unsigned long long>(attempts),
               last ? "\n" : "");
  std::fflush(stderr);
}

namespace {

// Enough descriptors for every client, as far as the hard limit allows.
void raise_descriptor_limit(std::size_t connections) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  rlim_t want = static_cast<rlim_t>(connections) + 64;
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = std::min(want, lim.rlim_max);
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

}  // namespace

Report run(const ChaosConfig& cfg, bool progress) {
  raise_descriptor_limit(cfg.connections);
  auto loop = net::EventLoop::create();
  if (!loop) throw ChaosError(fmt::format("cannot create the event loop: {}", loop.error().message()));
  Runner runner(cfg, **loop);
  runner.run(progress);
  Report report = std::move(runner.report());
  judge(report, cfg.max_good_errors, cfg.good_timeout);
  return report;
}

int run_chaos(const ChaosConfig& cfg) {
  Report report = run(cfg, ::isatty(STDERR_FILENO) == 1);
  std::string out = cfg.json ? render_json(report) : render_text(report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return report.passed ? 0 : 1;
}

}  // namespace unbroken::chaos
