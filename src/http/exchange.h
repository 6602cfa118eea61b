#pragma once
// One request and its response, as a handler sees it. Async handlers hold the shared_ptr and may
// answer later from the loop thread (after a timer, say); once the connection is gone every call is a
// no-op that reports false, and the token is cancelled.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "http/cancel_token.h"
#include "http/record.h"
#include "http/request.h"
#include "http/response_encoder.h"
#include "http/response_head.h"

namespace unbroken::net {
class EventLoop;
}

namespace unbroken::http {

class HttpConnection;

struct LoopContext;

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(HttpConnection* conn, net::EventLoop& loop) : conn_(conn), loop_(loop) {}
  // Writes the departure record kept for this exchange (see RequestRecorder::end), now that
  // the handler has let go: wasted_ms is how long it worked on after the client left.
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  [[nodiscard]] const Request& request() const { return request_; }
  [[nodiscard]] Request& request() { return request_; }
  [[nodiscard]] CancelToken& token() { return token_; }
  [[nodiscard]] net::EventLoop& loop() { return loop_; }
  // True while the client is there and the response is not finished.
  [[nodiscard]] bool active() const { return conn_ != nullptr && !finished_; }
  [[nodiscard]] bool started() const { return started_; }
  // The outcome the record will carry, once the request ended while its handler still held the
  // exchange (the client left, a server timer cut it); set before the token is cancelled.
  [[nodiscard]] std::optional<Outcome> departure() const {
    return departed_ ? std::optional<Outcome>(departed_->rec.outcome) : std::nullopt;
  }

  void add_header(std::string_view name, std::string_view value) { headers_.add(name, value); }
  // A complete response with Content-Length.
  void respond(int status, std::string_view body, std::string_view content_type = "text/plain; charset=utf-8");
  // A response whose body is bytes [offset, offset+length) of file, sent with sendfile.
  void respond_file(int status, UniqueFd file, std::uint64_t offset, std::uint64_t length);

  // Streaming: start() sends the head. Without a length the body is chunked (HTTP/1.1) or ends
  // with the connection (HTTP/1.0).
  void start(int status, std::optional<std::uint64_t> content_length = std::nullopt);
  // Queues body bytes. False when the client is gone (stop producing).
  bool write(std::string_view data);
  // Below the connection's output high-water mark: keep producing.
  [[nodiscard]] bool writable() const;
  // Runs cb once, when queued output falls below the low-water mark (or at once if it already is).
  // Dropped when the client leaves.
  void on_drain(std::function<void()> cb);
  void finish();
  // The reverse proxy's start(): an upstream's status and headers with our framing (see
  // ResponseEncoder::begin_upstream; no gzip: the body is already what the upstream chose). `up`
  // is read before it returns.
  void start_upstream(const UpstreamHead& up, std::optional<std::uint64_t> content_length);
  // The response cannot be completed (its upstream failed). Before the head: answers `status` with
  // `text` and Connection: close. After it: what is queued is sent, then the connection closes with
  // no final chunk, so the client sees a cut, never a complete-looking short response. The record
  // says `outcome`, and `timer` with its `timeout` when one of the caller's timers cut it.
  void abort(Outcome outcome, int status, std::string_view text, std::optional<TimerKind> timer = std::nullopt,
             std::chrono::milliseconds timeout = {});

  // The reverse proxy's Upgrade (RFC 9110 7.8): once the request is read whole, sends an
  // upstream's 101 head (see ResponseEncoder::begin_tunnel) and turns the connection into a byte
  // tunnel, phase `tunnel`, never reused after it. Client bytes go to `client_bytes` as they arrive
  // (those already buffered after the request head first, before this returns), each piece taken
  // whole; pause_body()/resume_body() stop and restart reading them. tunnel_write() queues bytes to
  // the client unframed; writable()/on_drain() are its back-pressure. The connection's own timers
  // (header, body, handler, send, keep-alive) do not run in a tunnel: its idle timer is the
  // caller's. It ends with one record, either by end_tunnel() or from the client's side (FIN or
  // RST, a drain, a failed write), which the caller hears through token(). False (nothing sent)
  // when the exchange cannot become a tunnel: the head already went, the body is not read, the
  // server drains, or a head hook would hold the head. `up` is read before it returns.
  [[nodiscard]] bool start_tunnel(const UpstreamHead& up, std::function<void(std::string_view)> client_bytes);
  // Queues and sends tunnel bytes to the client. False once the tunnel has ended.
  bool tunnel_write(std::string_view bytes);
  // Ends the tunnel from the upstream's side: its record says `outcome` (and `timer` with its
  // `timeout`, the caller's idle timer), and the client's connection closes after what is queued.
  // The token is cancelled too, as for an end from the client's side.
  void end_tunnel(Outcome outcome, std::optional<TimerKind> timer = std::nullopt,
                  std::chrono::milliseconds timeout = {});

  // The handler bounds every wait of its own (the reverse proxy's upstream timers): the
  // connection's handler timer is off for this exchange, so it never cuts a wait the handler's
  // own, longer timer is meant to judge.
  void own_timers();

  // Streamed request bodies (routes with BodyMode::kStream): chunks as they arrive, then end().
  // Without these, the body is read and discarded.
  void on_body(std::function<void(std::string_view)> chunk, std::function<void()> end);
  // Back-pressure for a streamed body, for a consumer slower than the client (an upstream, a disk):
  // after pause_body() (from the chunk callback or any time on the loop thread) no chunk and no
  // end() is delivered, the connection stops reading, and the kernel's receive window slows the
  // client; the unparsed bytes held meanwhile stay within max_buffered_input. The body timeout does
  // not run while paused (the stall is ours, not the client's). resume_body() delivers what was
  // held, then reads again. Finishing the response resumes too (the rest of the body is read).
  void pause_body();
  void resume_body();

  // Extension points for layers that act on a request (sessions, later the proxy, auth): head hooks
  // and typed per-exchange state (Envoy's filter chain and filter state).
  //
  // A head hook runs before the response head leaves (sessions save first). Hooks run one after the
  // other in the order they were added, at the handler's first respond()/start(); each gets a
  // continuation to call once, on the loop thread, when it is done. Until the last one proceeds,
  // response calls are held, then replayed in order. A hook that fails names the answer: the held
  // calls and the handler's headers are dropped, the hooks after it do not run, and its status and
  // body are sent instead. A hook added after the head has left does not run.
  struct HookVerdict {
    int status = 0;  // 0: go on
    std::string body;
    static HookVerdict proceed() { return {}; }
    static HookVerdict fail(int status, std::string body) { return {status, std::move(body)}; }
  };
  using HookDone = std::function<void(HookVerdict)>;
  using HeadHook = std::function<void(Exchange&, HookDone)>;
  void add_head_hook(HeadHook hook) { head_hooks_.push_back(std::move(hook)); }

  // A layer's state for this request, one per type, released with the exchange: state<T>() is null
  // until emplace_state<T>() made one (which replaces an earlier one). Loop thread only.
  template <class T>
  [[nodiscard]] T* state() {
    for (auto& s : states_)
      if (s->key == key_of<T>()) return &static_cast<StateOf<T>&>(*s).value;
    return nullptr;
  }
  template <class T, class... Args>
  T& emplace_state(Args&&... args) {
    auto made = std::make_unique<StateOf<T>>(std::forward<Args>(args)...);
    T& value = made->value;
    for (auto& s : states_)
      if (s->key == key_of<T>()) {
        s = std::move(made);
        return value;
      }
    states_.push_back(std::move(made));
    return value;
  }

 private:
  friend class HttpConnection;
  friend class RequestRecorder;
  HttpConnection* conn_;
  net::EventLoop& loop_;
  Request request_;
  Headers headers_;
  CancelToken token_;
  std::function<void(std::string_view)> body_chunk_;
  std::function<void()> body_end_;
  std::function<void()> drain_;
  std::function<void(std::string_view)> tunnel_bytes_;  // set while the exchange is a tunnel
  bool started_ = false;
  bool finished_ = false;
  bool own_timers_ = false;
  ResponseEncoder encoder_;  // the framing of this response, once started
  // Where the head starts in the request's output (after a 100 Continue, say) and its size: a
  // framing error in the body can replace a head none of which was sent.
  std::uint64_t head_at_ = 0;
  std::size_t head_len_ = 0;
  std::string encoding_;  // the Content-Encoding sent, for the record ("" = identity)
  struct Departed {
    RequestRecord rec;
    std::chrono::steady_clock::time_point at;
    LoopContext* ctx;
    // The record outlives the connection: the one view into the connection's memory (the TLS
    // session's SNI, which the SSL object owns) is kept here instead.
    std::string sni;
  };
  std::unique_ptr<Departed> departed_;

  // True when `op` was held behind the head hooks (see add_head_hook).
  bool held(std::function<void()> op);
  // Runs the next head hook, or replays the held calls after the last.
  void run_next_hook();
  // Once the head has left, a hook added later has nothing to run before: it does not gate (and
  // does not run), so no call is held behind it that could never be answered.
  [[nodiscard]] bool gating() const { return gated_ || (!started_ && next_hook_ < head_hooks_.size()); }
  std::vector<HeadHook> head_hooks_;
  std::size_t next_hook_ = 0;  // head_hooks_ before it have run
  bool gated_ = false;         // a hook is running: response calls wait
  std::vector<std::function<void()>> held_ops_;

  // Typed state: the key is the address of a variable each type has once (no RTTI needed).
  struct StateBase {
    explicit StateBase(const void* k) : key(k) {}
    virtual ~StateBase() = default;
    const void* key;
  };
  template <class T>
  struct StateOf final : StateBase {
    template <class... Args>
    explicit StateOf(Args&&... args) : StateBase(key_of<T>()), value(std::forward<Args>(args)...) {}
    T value;
  };
  template <class T>
  static const void* key_of() {
    static const char key = 0;
    return &key;
  }
  std::vector<std::unique_ptr<StateBase>> states_;
};

using ExchangePtr = std::shared_ptr<Exchange>;

}  // namespace unbroken::http
