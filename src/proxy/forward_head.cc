#include "proxy/forward_head.h"

#include <array>

#include "base/text.h"
#include "http/request_serializer.h"

namespace unbroken::proxy {
namespace {

// Whether the comma-separated list `value` holds the token `name`.
bool lists_token(std::string_view value, std::string_view name) {
  while (!value.empty())
    if (iequals(next_list_element(value), name)) return true;
  return false;
}

}  // namespace

bool dropped_request_field(const http::Request& req, std::string_view name) {
  static constexpr std::array<std::string_view, 11> kDropped{"connection",
                                                             "keep-alive",
                                                             "proxy-connection",
                                                             "te",
                                                             "trailer",
                                                             "transfer-encoding",
                                                             "upgrade",
                                                             "content-length",
                                                             "x-forwarded-for",
                                                             "via",
                                                             "proxy-authorization"};
  for (std::string_view d : kDropped)
    if (iequals(name, d)) return true;
  for (auto f : req.headers)
    if (iequals(f.name, "connection") && lists_token(f.value, name)) return true;
  return false;
}

std::string_view client_ip(std::string_view client) {
  if (!client.empty() && client.front() == '[') {
    auto close = client.find(']');
    return close == std::string_view::npos ? client : client.substr(1, close - 1);
  }
  auto colon = client.rfind(':');
  return colon == std::string_view::npos ? client : client.substr(0, colon);
}

void append_forward_head(std::string& out, const http::Request& req) {
  http::append_request_line(out, req.method, req.target, 1);
  for (auto f : req.headers)
    if (!dropped_request_field(req, f.name)) http::append_field(out, f.name, f.value);
  // Without --trusted-proxies (not there yet) an X-Forwarded-For from the client is not believed:
  // the peer's own address replaces it.
  http::append_field(out, "X-Forwarded-For", client_ip(req.client));
  std::string via;
  for (auto f : req.headers)
    if (iequals(f.name, "via")) via.append(f.value).append(", ");
  via += "1.1 unbroken";
  http::append_field(out, "Via", via);
  http::append_field(out, "Connection", "close");
  if (req.chunked) {
    http::end_request_head(out, http::BodyFraming::kChunked);
  } else if (req.content_length) {
    http::end_request_head(out, http::BodyFraming::kContentLength, *req.content_length);
  } else {
    http::end_request_head(out, http::BodyFraming::kNone);
  }
}

}  // namespace unbroken::proxy
