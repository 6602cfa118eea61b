#pragma once
// An in-memory Transport for driving the HTTP layer without sockets (unit tests, fuzzers): input is
// pushed with receive(), output collects in out_, and the "kernel" takes at most window_ bytes.

#include <algorithm>
#include <string>

#include "net/transport.h"

namespace unbroken::testing {

class FakeTransport : public net::Transport {
 public:
  void set_handler(net::TransportHandler* h) override { handler_ = h; }
  net::Buffer& input() override { return in_; }
  void queue(std::string_view bytes) override { pending_ += bytes; }
  void queue_file(UniqueFd, std::uint64_t, std::uint64_t length) override { pending_ += std::string(length, 'F'); }
  Result<std::size_t> flush() override {
    if (fail_with_) return Errno{fail_with_};
    std::size_t n = std::min(pending_.size(), window_);
    out_ += pending_.substr(0, n);
    pending_.erase(0, n);
    window_ -= n;
    return n;
  }
  [[nodiscard]] std::size_t queued_bytes() const override { return pending_.size(); }
  void discard_output_after(std::size_t keep) override {
    if (keep < pending_.size()) pending_.resize(keep);
  }
  void set_reading(bool on) override { reading_ = on; }
  void shutdown_write() override { shut_ = true; }
  void close(bool abortive) override {
    closed_ = true;
    abortive_ = abortive;
  }
  [[nodiscard]] bool input_drained() const override { return drained_ && in_.empty(); }
  [[nodiscard]] std::optional<net::TcpDelivery> delivery() const override {
    ++delivery_asks_;
    if (acked_all_) return net::TcpDelivery{out_.size()};
    return delivery_;
  }
  [[nodiscard]] const std::string& peer() const override { return peer_; }

  // Test side.
  void receive(std::string_view bytes) {
    in_.append(bytes);
    handler_->on_data(in_);
  }
  // Lets the "kernel" take n more bytes, as an EPOLLOUT would.
  void drain(std::size_t n) {
    window_ = n;
    auto r = flush();
    if (*r > 0) handler_->on_written(*r);
  }

  net::TransportHandler* handler_ = nullptr;
  net::Buffer in_;
  std::string pending_, out_, peer_ = "10.0.0.1:1234";
  std::size_t window_ = SIZE_MAX;
  int fail_with_ = 0;
  std::optional<net::TcpDelivery> delivery_;  // what the "kernel" says was acknowledged
  mutable int delivery_asks_ = 0;
  bool reading_ = true, shut_ = false, closed_ = false, abortive_ = false;
  // A socket whose last read emptied it (input_drained) and whose kernel says every byte written
  // was acknowledged (delivery): off by default, so closes linger as over a real network.
  bool drained_ = false, acked_all_ = false;
};

}  // namespace unbroken::testing
