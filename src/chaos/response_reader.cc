#include "chaos/response_reader.h"

namespace unbroken::chaos {
namespace {

ResponseReader& self(llhttp_t* p) {
  return *static_cast<ResponseReader*>(p->data);
}

}  // namespace

ResponseReader::ResponseReader() {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

int ResponseReader::on_message_begin(llhttp_t* p) {
  self(p).started_ = true;
  return 0;
}

int ResponseReader::on_headers_complete(llhttp_t* p) {
  ResponseReader& s = self(p);
  s.status_ = p->status_code;
  s.head_seen_ = true;
  return 0;
}

int ResponseReader::on_body(llhttp_t* p, const char*, std::size_t len) {
  self(p).body_bytes_ += len;
  return 0;
}

int ResponseReader::on_message_complete(llhttp_t* p) {
  ResponseReader& s = self(p);
  s.complete_ = true;
  s.keep_alive_ = llhttp_should_keep_alive(p) != 0;
  // Stop here: what follows belongs to the next response, after reset().
  return HPE_PAUSED;
}

ResponseReader::Status ResponseReader::feed(std::string_view data, std::size_t& consumed) {
  consumed = 0;
  if (complete_) return Status::kComplete;
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  consumed = data.size();
  if (err == HPE_PAUSED) {
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
  } else if (err != HPE_OK) {
    error_ = llhttp_errno_name(err);
    return Status::kError;
  }
  if (complete_) return Status::kComplete;
  if (head_seen_ && !head_reported_) {
    head_reported_ = true;
    return Status::kHead;
  }
  return Status::kNeedMore;
}

bool ResponseReader::finish() {
  if (complete_) return true;
  if (!started_) return false;
  // A body delimited by the close is complete now; any other framing was cut short.
  // on_message_complete pauses the parser, which llhttp_finish reports as HPE_PAUSED.
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) return false;
  return complete_;
}

void ResponseReader::reset() {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
  status_ = 0;
  started_ = head_seen_ = head_reported_ = complete_ = keep_alive_ = false;
  body_bytes_ = 0;
  error_ = {};
}

}  // namespace unbroken::chaos
