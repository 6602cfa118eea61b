// The handler's side of a request (see exchange.h): its calls are checked and held behind the head
// hooks here, then carried out by the connection (HttpConnection::ex_*).

#include "http/exchange.h"

#include "http/http_connection.h"

namespace unbroken::http {

Exchange::~Exchange() {
  if (!departed_) return;
  // May run on a worker thread: the sink is thread-safe, and wasted_us is the one multi-writer counter.
  RequestRecord& rec = departed_->rec;
  // The proxy went on with the upstream after the client left: its figures as they ended.
  if (const UpstreamRecord* u = state<UpstreamRecord>()) rec.upstream = *u;
  rec.wasted_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - departed_->at).count();
  departed_->ctx->stats.wasted_us.fetch_add(static_cast<std::uint64_t>(rec.wasted_ms * 1000),
                                            std::memory_order_relaxed);
  if (departed_->ctx->record) departed_->ctx->record(rec);
}

bool Exchange::held(std::function<void()> op) {
  if (!gating()) return false;
  held_ops_.push_back(std::move(op));
  if (!gated_) {
    gated_ = true;
    run_next_hook();
  }
  return true;
}

void Exchange::run_next_hook() {
  if (next_hook_ == head_hooks_.size()) {
    gated_ = false;
    auto ops = std::move(held_ops_);
    held_ops_.clear();
    for (auto& op : ops) op();
    return;
  }
  // Moved out: a hook may add hooks (the vector may grow while it runs).
  HeadHook hook = std::move(head_hooks_[next_hook_++]);
  hook(*this, [self = shared_from_this()](HookVerdict v) {
    if (v.status == 0) return self->run_next_hook();
    self->gated_ = false;
    self->next_hook_ = self->head_hooks_.size();  // the later hooks do not run
    self->held_ops_.clear();
    self->headers_.clear();
    self->respond(v.status, v.body);
  });
}

void Exchange::respond(int status, std::string_view body, std::string_view content_type) {
  if (conn_ == nullptr || started_) return;
  if (gating()) {
    held([this, status, b = std::string(body), ct = std::string(content_type)] { respond(status, b, ct); });
    return;
  }
  HttpConnection* c = conn_;
  c->ex_start(*this, status, body.size(), false, content_type);
  if (conn_ == nullptr) return;
  c->ex_write(*this, body, false);
  c->ex_finish(*this);
}

void Exchange::respond_file(int status, UniqueFd file, std::uint64_t offset, std::uint64_t length) {
  if (conn_ == nullptr || started_) return;
  if (gating()) {
    auto shared = std::make_shared<UniqueFd>(std::move(file));
    held([this, status, shared, offset, length] { respond_file(status, std::move(*shared), offset, length); });
    return;
  }
  HttpConnection* c = conn_;
  c->ex_start(*this, status, length, false, {});
  if (conn_ == nullptr) return;
  c->ex_file(*this, std::move(file), offset, length);
}

void Exchange::start(int status, std::optional<std::uint64_t> content_length) {
  if (conn_ == nullptr) return;
  // The closure is built only when the call is held: a std::function of it allocates.
  if (gating()) {
    held([this, status, content_length] { start(status, content_length); });
    return;
  }
  conn_->ex_start(*this, status, content_length, true, {});
}

void Exchange::start_upstream(const UpstreamHead& up, std::optional<std::uint64_t> content_length) {
  if (conn_ == nullptr || started_) return;
  if (gating()) {
    // Held: keep copies, the caller's head is gone by the time the hooks let it through.
    auto headers = std::make_shared<HeaderList>(up.headers ? *up.headers : HeaderList{});
    held([this, status = up.status, reason = std::string(up.reason), headers, content_length] {
      start_upstream({status, reason, headers.get()}, content_length);
    });
    return;
  }
  conn_->ex_start_upstream(*this, up, content_length);
}

void Exchange::abort(Outcome outcome, int status, std::string_view text, std::optional<TimerKind> timer,
                     std::chrono::milliseconds timeout) {
  if (conn_ == nullptr) return;
  conn_->ex_abort(*this, outcome, status, text, timer, timeout);
}

bool Exchange::start_tunnel(const UpstreamHead& up, std::function<void(std::string_view)> client_bytes) {
  if (conn_ == nullptr || started_ || gating()) return false;
  return conn_->ex_start_tunnel(*this, up, std::move(client_bytes));
}

bool Exchange::tunnel_write(std::string_view bytes) {
  return conn_ != nullptr && conn_->ex_tunnel_write(*this, bytes);
}

void Exchange::end_tunnel(Outcome outcome, std::optional<TimerKind> timer, std::chrono::milliseconds timeout) {
  if (conn_ != nullptr) conn_->ex_end_tunnel(*this, outcome, timer, timeout);
}

bool Exchange::write(std::string_view data) {
  if (conn_ == nullptr) return false;
  if (gated_) return held([this, d = std::string(data)] { write(d); });
  return conn_->ex_write(*this, data, true);
}

void Exchange::own_timers() {
  if (conn_ != nullptr) conn_->ex_own_timers(*this);
}

bool Exchange::writable() const {
  return conn_ != nullptr && !gated_ && conn_->ex_writable();
}

void Exchange::on_drain(std::function<void()> cb) {
  if (conn_ == nullptr) return;
  if (gated_) {
    held([this, cb = std::move(cb)]() mutable { on_drain(std::move(cb)); });
    return;
  }
  conn_->ex_on_drain(*this, std::move(cb));
}

void Exchange::finish() {
  if (conn_ == nullptr || held([this] { finish(); })) return;
  conn_->ex_finish(*this);
}

void Exchange::on_body(std::function<void(std::string_view)> chunk, std::function<void()> end) {
  body_chunk_ = std::move(chunk);
  body_end_ = std::move(end);
}

void Exchange::pause_body() {
  if (conn_ != nullptr) conn_->ex_pause_body(*this);
}

void Exchange::resume_body() {
  if (conn_ != nullptr) conn_->ex_resume_body(*this);
}

}  // namespace unbroken::http
