#include "proxy/forward_head.h"

#include <array>

#include "base/text.h"
#include "http/request_serializer.h"
#include "http/wire.h"
#include "proxy/tunnel.h"

namespace unbroken::proxy {
namespace {

constexpr std::size_t kMaxRequestId = 128;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 5.6.2 tchar: what a Forwarded value may hold unquoted.
bool is_token(std::string_view s) {
  constexpr std::string_view kSpecial = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  for (char c : s) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kSpecial.find(c) == std::string_view::npos) return false;
  }
  return true;
}

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

// "Name: " and, when the peer is believed, the values of the client's own fields of that name, each
// followed by ", ": the caller appends this hop's element and ends the line.
void start_list(std::string& out, const http::Request& req, std::string_view name, bool theirs) {
  out.append(name).append(": ");
  if (!theirs) return;
  for (auto f : req.headers)
    if (iequals(f.name, name) && !f.value.empty()) out.append(f.value).append(", ");
}

// The client's value of `name` from a trusted peer (a TLS terminator in front knows the scheme and
// host it was asked for), ours otherwise.
std::string_view believed(const http::Request& req, std::string_view name, bool trusted, std::string_view ours) {
  std::string_view theirs = trusted ? req.header(name) : std::string_view();
  return theirs.empty() ? ours : theirs;
}

// RFC 7239 4: for=node;proto=...;host=..., an IPv6 node bracketed and quoted, a host with a port quoted.
void append_forwarded_element(std::string& out, std::string_view ip, std::string_view proto, std::string_view host) {
  out.append("for=");
  if (ip.empty()) {
    out.append("unknown");
  } else if (ip.find(':') != std::string_view::npos) {
    out.append("\"[").append(ip).append("]\"");
  } else {
    out.append(ip);
  }
  out.append(";proto=").append(proto);
  if (host.empty()) return;
  out.append(";host=");
  if (is_token(host)) {
    out.append(host);
  } else {
    append_quoted(out, host);
  }
}

}  // namespace

bool dropped_request_field(const http::Request& req, std::string_view name, bool trusted) {
  // Trailer and the client's framing (ours replaces it), credentials meant for us as a proxy, and
  // the forwarding fields, written below from the client's values or ours.
  static constexpr std::array<std::string_view, 9> kOurs{"trailer",         "content-length",    "proxy-authorization",
                                                         "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                                                         "forwarded",       "x-request-id",      "via"};
  if (http::is_hop_by_hop_field(name) || http::named_by_connection(req.headers, name)) return true;
  for (std::string_view d : kOurs)
    if (iequals(name, d)) return true;
  // X-Forwarded-Port, -Prefix and the like say something only a proxy in front may say.
  return !trusted && starts_with_ci(name, "x-forwarded-");
}

std::string_view client_ip(std::string_view client) {
  if (!client.empty() && client.front() == '[') {
    auto close = client.find(']');
    return close == std::string_view::npos ? client : client.substr(1, close - 1);
  }
  auto colon = client.rfind(':');
  return colon == std::string_view::npos ? client : client.substr(0, colon);
}

std::string_view client_request_id(const http::Request& req, bool trusted) {
  if (!trusted) return {};
  std::string_view id;
  int seen = 0;
  for (auto f : req.headers)
    if (iequals(f.name, "x-request-id") && ++seen == 1) id = f.value;
  // Two ids are one too many to choose from; the value goes into the admin's URL path and the log.
  if (seen != 1 || id.empty() || id.size() > kMaxRequestId) return {};
  for (char c : id)
    if (c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '%') return {};
  return id;
}

void append_forward_head(std::string& out, const http::Request& req, const ForwardParams& p) {
  http::append_request_line(out, req.method, req.target, 1);
  for (auto f : req.headers)
    if (!dropped_request_field(req, f.name, p.trusted)) http::append_field(out, f.name, f.value);
  std::string_view ip = client_ip(req.client);
  std::string_view host = req.header("host");
  // From an untrusted peer a client-sent X-Forwarded-For is not believed: the peer's own address
  // replaces it. From a trusted one the chain grows by the peer.
  start_list(out, req, "X-Forwarded-For", p.trusted);
  out.append(ip).append("\r\n");
  http::append_field(out, "X-Forwarded-Proto", believed(req, "x-forwarded-proto", p.trusted, p.proto));
  if (std::string_view h = believed(req, "x-forwarded-host", p.trusted, host); !h.empty())
    http::append_field(out, "X-Forwarded-Host", h);
  start_list(out, req, "Forwarded", p.trusted);
  append_forwarded_element(out, ip, p.proto, host);
  out.append("\r\n");
  if (!p.request_id.empty()) http::append_field(out, "X-Request-Id", p.request_id);
  if (host.empty()) http::append_field(out, "Host", p.default_host);
  start_list(out, req, "Via", true);  // every hop's protocol, whoever sent it
  out.append("1.1 unbroken\r\n");
  // The one hop-by-hop field passed on: an Upgrade the client asked for, which a 101 answers with
  // a tunnel (proxy/tunnel.h).
  if (std::string_view upgrade = requested_upgrade(req); !upgrade.empty()) {
    http::append_field(out, "Upgrade", upgrade);
    http::append_field(out, "Connection", "upgrade");
  } else if (!p.keep_alive) {
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
