#include "proxy/forward_head.h"

#include <array>

#include "base/text.h"
#include "http/request_serializer.h"
#include "http/wire.h"
#include "proxy/tunnel.h"

namespace unbroken::proxy {

bool dropped_request_field(const http::Request& req, std::string_view name) {
  // The hop-by-hop fields, Trailer and the client's framing (ours replaces it), the forwarding
  // fields we write ourselves, and credentials meant for us as a proxy.
  static constexpr std::array<std::string_view, 5> kOurs{"trailer", "content-length", "x-forwarded-for", "via",
                                                         "proxy-authorization"};
  if (http::is_hop_by_hop_field(name) || http::named_by_connection(req.headers, name)) return true;
  for (std::string_view d : kOurs)
    if (iequals(name, d)) return true;
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

void append_forward_head(std::string& out, const http::Request& req, bool keep_alive) {
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
  // The one hop-by-hop field passed on: an Upgrade the client asked for, which a 101 answers with
  // a tunnel (proxy/tunnel.h).
  if (std::string_view upgrade = requested_upgrade(req); !upgrade.empty()) {
    http::append_field(out, "Upgrade", upgrade);
    http::append_field(out, "Connection", "upgrade");
  } else if (!keep_alive) {
    http::append_field(out, "Connection", "close");
  }
  if (req.chunked) {
    http::end_request_head(out, http::BodyFraming::kChunked);
  } else if (req.content_length) {
    http::end_request_head(out, http::BodyFraming::kContentLength, *req.content_length);
  } else {
    http::end_request_head(out, http::BodyFraming::kNone);
  }
}

}  // namespace unbroken::proxy
