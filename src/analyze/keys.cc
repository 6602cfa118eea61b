#include "analyze/keys.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>

namespace unbroken::analyze {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

bool is_id(std::string_view seg) {
  if (seg.empty()) return false;
  bool all_digits = true, all_hex = true, all_token = true, any_digit = false;
  for (char c : seg) {
    bool d = is_digit(c);
    any_digit |= d;
    all_digits &= d;
    all_hex &= is_hex(c);
    all_token &= is_alnum(c) || c == '-' || c == '_';
  }
  if (all_digits) return true;
  if (!any_digit) return false;
  if (all_hex && seg.size() >= 8) return true;
  if (is_uuid(seg)) return true;
  return all_token && seg.size() >= 16;
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace

void normalise_route(std::string_view path, std::string& out) {
  out.clear();
  if (auto q = path.find_first_of("?#"); q != std::string_view::npos) path = path.substr(0, q);
  // An absolute-form target ("http://host/p") is grouped by its path.
  if (path.starts_with("http://") || path.starts_with("https://")) {
    auto slash = path.find('/', path.find("//") + 2);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  if (path.empty()) {
    out = "-";
    return;
  }
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      out.push_back('/');
      ++i;
      continue;
    }
    std::size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(i, end - i);
    // "145.zip", "9f3a...e1.json": an id with an extension keeps the extension.
    std::size_t dot = seg.find('.');
    if (is_id(seg)) {
      out.append("{id}");
    } else if (dot != std::string_view::npos && dot > 0 && is_id(seg.substr(0, dot))) {
      out.append("{id}");
      out.append(seg.substr(dot));
    } else {
      out.append(seg);
    }
    i = end;
  }
}

std::string_view route_pattern(std::string_view route) {
  auto sp = route.find(' ');
  if (sp == std::string_view::npos || sp + 1 >= route.size() || route[sp + 1] != '/') return {};
  // A trailing wildcard mounts a whole tree (a --proxy prefix, "* /api/*"): the application's own
  // routes lie beneath it, and its paths tell them apart better than the mount does.
  if (route.ends_with('*')) return {};
  return route.substr(sp + 1);
}

std::string_view client_address(std::string_view client) {
  if (client.starts_with('[')) {
    auto close = client.find(']');
    return close == std::string_view::npos ? client.substr(1) : client.substr(1, close - 1);
  }
  auto colon = client.find(':');
  // One colon: IPv4 with a port. Several: a bare IPv6 address.
  if (colon != std::string_view::npos && client.find(':', colon + 1) == std::string_view::npos) {
    return client.substr(0, colon);
  }
  return client;
}

bool client_network(std::string_view address, std::string& out) {
  out.clear();
  if (address.size() >= INET6_ADDRSTRLEN) return false;
  // IPv4 fast path: the network is the text up to the last dot, no inet_pton needed.
  int dots = 0;
  bool v4 = !address.empty();
  for (char c : address) {
    if (c == '.') {
      ++dots;
    } else if (!is_digit(c)) {
      v4 = false;
      break;
    }
  }
  if (v4 && dots == 3) {
    out.append(address.substr(0, address.rfind('.')));
    out.append(".0/24");
    return true;
  }
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, address.data(), address.size());
  buf[address.size()] = '\0';
  unsigned char bytes[16];
  if (::inet_pton(AF_INET6, buf, bytes) != 1) return false;
  std::memset(bytes + 8, 0, 8);
  char text[INET6_ADDRSTRLEN];
  if (::inet_ntop(AF_INET6, bytes, text, sizeof text) == nullptr) return false;
  out.append(text);
  out.append("/64");
  return true;
}

std::optional<ClientFilter> ClientFilter::parse(std::string_view text) {
  ClientFilter f;
  std::string addr(text.substr(0, text.find('/')));
  int max_prefix = 0;
  if (::inet_pton(AF_INET, addr.c_str(), f.bytes_) == 1) {
    f.family_ = AF_INET;
    max_prefix = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), f.bytes_) == 1) {
    f.family_ = AF_INET6;
    max_prefix = 128;
  } else {
    return std::nullopt;
  }
  f.prefix_ = max_prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), f.prefix_);
    if (ec != std::errc() || end != p.data() + p.size() || f.prefix_ < 0 || f.prefix_ > max_prefix) {
      return std::nullopt;
    }
  }
  return f;
}

bool ClientFilter::matches(std::string_view address) const {
  if (address.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, address.data(), address.size());
  buf[address.size()] = '\0';
  unsigned char b[16];
  if (::inet_pton(family_, buf, b) != 1) return false;
  int full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(b, bytes_, static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (b[full] & mask) == (bytes_[full] & mask);
}

std::string_view ua_family(std::string_view ua, std::string& scratch) {
  if (ua.empty() || ua == "-") return "-";
  // Order matters: Edge and Opera claim Chrome, Chrome claims Safari, bots claim browsers.
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kRules{{
      {"Googlebot", "Googlebot"},
      {"bingbot", "Bingbot"},
      {"bot", "other bot"},
      {"Bot", "other bot"},
      {"spider", "other bot"},
      {"curl/", "curl"},
      {"Wget/", "Wget"},
      {"python-requests", "python-requests"},
      {"Python-urllib", "Python-urllib"},
      {"Go-http-client", "Go-http-client"},
      {"okhttp", "okhttp"},
      {"Apache-HttpClient", "Apache-HttpClient"},
      {"Java/", "Java"},
      {"Edg/", "Edge"},
      {"OPR/", "Opera"},
      {"Firefox/", "Firefox"},
      {"CriOS/", "Chrome"},
      {"Chrome/", "Chrome"},
      {"Mobile/", "Mobile Safari"},
      {"Safari/", "Safari"},
      {"MSIE ", "Internet Explorer"},
      {"Trident/", "Internet Explorer"},
  }};
  for (const auto& [needle, family] : kRules) {
    if (contains(ua, needle)) return family;
  }
  std::size_t end = ua.find_first_of("/ ;(");
  scratch.assign(ua.substr(0, std::min<std::size_t>(end, 40)));
  return scratch;
}

}  // namespace unbroken::analyze
