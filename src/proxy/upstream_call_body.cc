// What flows between the client and the upstream: the request body and the response body, each
// either streamed with back-pressure both ways or buffered in a spool, so that a slow client does
// not hold an application worker (gunicorn's docs ask this of the proxy in front of sync workers).
#include <limits>

#include "http/request_serializer.h"
#include "proxy/upstream_call.h"

namespace unbroken::proxy {

using http::Outcome;

namespace {

// What a response spool may hold before the upstream is read no further: room for two more reads,
// so that an append never meets the cap (the parser's bytes cannot be handed back), or half the
// cap when it is smaller than that. An empty spool is never near it.
bool near_cap(const Spool& held, std::size_t read_size) {
  std::uint64_t margin = std::min<std::uint64_t>(2 * read_size, held.limits().max_total / 2);
  return !held.empty() && held.size() + margin >= held.limits().max_total;
}

}  // namespace

void UpstreamCall::take_body() {
  const http::Request& req = ex_->request();
  if (!req.has_body()) return;
  std::weak_ptr<UpstreamCall> weak = self_;
  if (s_->request_buffering) {
    std::uint64_t cap = s_->max_body > 0 ? s_->max_body : std::numeric_limits<std::uint64_t>::max();
    body_.emplace(SpoolLimits{s_->request_buffer_memory, cap, s_->temp_dir});
    ex_->on_body(
        [weak](std::string_view c) {
          if (auto self = weak.lock()) self->buffer_body(c);
        },
        [weak] {
          if (auto self = weak.lock(); self && !self->done_ && !self->client_gone_) self->first_attempt();
        });
    return;
  }
  ex_->on_body(
      [weak](std::string_view c) {
        if (auto self = weak.lock()) self->stream_body(c);
      },
      [weak] {
        if (auto self = weak.lock()) self->end_streamed_body();
      });
}

// Request buffering: the body is read whole, at the client's pace, before any upstream is chosen;
// the application gets it at the speed of loopback.
void UpstreamCall::buffer_body(std::string_view chunk) {
  if (done_ || client_gone_) return;
  auto r = body_->append(chunk);
  if (r) return;
  if (r.error() == kSpoolFull) {
    ex_->abort(Outcome::kLimitExceeded, 413, "request body too large\n");
  } else {
    ex_->abort(Outcome::kHandlerError, 500, "cannot buffer the request body\n");
  }
  release_upstream(false);
}

// The buffered body, as fast as the upstream takes it: called once connected and as its output
// drains. Chunked stays chunked (the application sees the framing the client chose).
void UpstreamCall::send_buffered_body() {
  for (;;) {
    while (!body_->empty() && up_->queued_bytes() < s_->output_high_water) {
      auto view = body_->peek();
      if (!view) return fail(Outcome::kHandlerError, 500, "cannot read the buffered request body\n");
      queue_body_bytes(*view);
      body_->consume(view->size());
      body_sent_any_ = true;
    }
    if (body_->empty() && !request_sent_) end_body();
    if (!flush()) return;
    if (request_sent_) return request_complete();
    // The kernel took most of it at once (no on_written follows what flush() sent): go on.
    if (up_->queued_bytes() >= s_->output_low_water) return;
  }
}

void UpstreamCall::queue_body_bytes(std::string_view chunk) {
  if (!ex_->request().chunked) return queue_upstream(chunk);
  scratch_.clear();
  http::append_chunk(scratch_, chunk);
  queue_upstream(scratch_);
}

// A body sent again must be there again: only a buffered one that has not started up yet.
bool UpstreamCall::replayable() const {
  return !ex_->request().has_body() || (body_ && !body_sent_any_);
}

void UpstreamCall::stream_body(std::string_view chunk) {
  if (done_) return;
  queue_body_bytes(chunk);
  if (!flush()) return;
  // The application reads slower than the client sends: stop reading the client.
  if (up_->queued_bytes() >= s_->output_high_water && !body_paused_) {
    body_paused_ = true;
    ex_->pause_body();
  }
}

// The body's end: a chunked one gets its last chunk; the request is whole.
void UpstreamCall::end_body() {
  if (ex_->request().chunked) {
    scratch_.clear();
    http::append_last_chunk(scratch_);
    queue_upstream(scratch_);
  }
  request_sent_ = true;
}

void UpstreamCall::end_streamed_body() {
  if (done_) return;
  end_body();
  if (!flush()) return;
  if (connected_) request_complete();
}

void UpstreamCall::on_written(std::size_t) {
  last_write_ = ex_->loop().now();
  if (body_ && !request_sent_ && connected_ && up_->queued_bytes() < s_->output_low_water) return send_buffered_body();
  if (body_paused_ && up_->queued_bytes() < s_->output_low_water) {
    body_paused_ = false;
    ex_->resume_body();
  }
}

void UpstreamCall::on_body(std::string_view chunk) {
  if (done_) return;
  if (client_gone_ || !ex_->active()) {
    // Past the byte budget the application is cut off after all (its next write fails).
    discarded_ += chunk.size();
    if (discarded_ >= s_->abort_budget_bytes) release_upstream(false);
    return;
  }
  if ((held_ && !held_->empty()) || (buffer_response_ && !ex_->writable())) return hold(chunk);
  ex_->write(chunk);
}

// Response buffering: what the client cannot take yet is kept (memory, then a temp file) and the
// upstream read on, so the application is released as soon as it has answered.
void UpstreamCall::hold(std::string_view chunk) {
  if (!held_)
    held_.emplace(
        SpoolLimits{s_->response_buffer_memory, s_->response_buffer_memory + s_->response_max_temp, s_->temp_dir});
  if (!held_->append(chunk)) {
    // The disk refused (full, or no temp dir): the client gets what is held, then a cut.
    return fail(Outcome::kHandlerError, 502, "cannot hold the upstream's response\n");
  }
  if (drain_watched_) return;
  drain_watched_ = true;
  std::weak_ptr<UpstreamCall> weak = self_;
  ex_->on_drain([weak] {
    if (auto self = weak.lock()) self->write_held();
  });
}

void UpstreamCall::write_held() {
  drain_watched_ = false;
  while (!client_gone_ && held_ && !held_->empty() && ex_->writable()) {
    auto view = held_->peek();
    if (!view) {
      held_->clear();
      ending_ = Ending{Outcome::kHandlerError, 502, "cannot read the held response\n", std::nullopt, {}};
      break;
    }
    std::size_t n = view->size();
    ex_->write(*view);
    if (held_) held_->consume(n);  // a write that found the client gone dropped held_
  }
  if (client_gone_ || !held_) return end_if_done();
  if (!held_->empty()) {
    drain_watched_ = true;
    std::weak_ptr<UpstreamCall> weak = self_;
    ex_->on_drain([weak] {
      if (auto self = weak.lock()) self->write_held();
    });
  }
  if (reading_paused_ && !done_ && (held_->empty() || !near_cap(*held_, s_->max_buffered))) resume_reading();
  if (!held_->empty()) return;
  if (ending_) {
    Ending e = *ending_;
    ending_.reset();
    ex_->abort(e.outcome, e.status, e.text, e.timer, e.timeout);
  } else if (message_done_) {
    ex_->finish();
  }
  end_if_done();
}

void UpstreamCall::end_response(const Ending& e) {
  if (held_ && !held_->empty()) {
    ending_ = e;  // the client gets what is held first: it is a cut either way
    return;
  }
  ex_->abort(e.outcome, e.status, e.text, e.timer, e.timeout);
}

void UpstreamCall::watch_client_output() {
  if (done_ || client_gone_ || !ex_->active()) return;
  if (buffer_response_) {
    // Held for the client: the upstream is read on until the spool nears its cap.
    if (held_ && near_cap(*held_, s_->max_buffered)) {
      up_->set_reading(false);
      reading_paused_ = true;
    }
    return;
  }
  // Streamed: the client reads slower than the application writes, so the upstream is read no
  // further until the client's output drains.
  if (ex_->writable()) return;
  up_->set_reading(false);
  reading_paused_ = true;
  std::weak_ptr<UpstreamCall> weak = self_;
  ex_->on_drain([weak] {
    if (auto self = weak.lock(); self && !self->done_) self->resume_reading();
  });
}

}  // namespace unbroken::proxy
