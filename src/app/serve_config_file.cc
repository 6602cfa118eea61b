// serve's --config file: TOML read with toml++, each key through the same option table and checks
// as its flag, and the proxy key's strings and [[proxy]] tables.
#include <fcntl.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "app/serve_options.h"
#include "app/toml_guard.h"
#include "base/unique_fd.h"
#include "proxy/proxy_route.h"

namespace unbroken::app::serve_options {
namespace {

std::string_view kind_of(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// The TOML value as the text a flag would have carried, so both go through apply(). Integers are
// taken where a flag takes digits; durations accept the integer 0 for the same reason "0" is accepted.
std::vector<std::string> toml_values(const OptionSpec& spec, const toml::node& node) {
  auto wrong = [&](std::string_view expected) {
    return BadValue{"expected " + std::string(expected) + ", got " + std::string(kind_of(node))};
  };
  auto integer = [&]() -> std::vector<std::string> { return {std::to_string(node.as_integer()->get())}; };
  return std::visit(Overloaded{
                        [&](Member<std::vector<std::string>>) {
                          constexpr std::string_view kExpected = "a string or an array of strings";
                          if (const auto* s = node.as_string()) return std::vector<std::string>{s->get()};
                          const toml::array* array = node.as_array();
                          if (array == nullptr) throw wrong(kExpected);
                          std::vector<std::string> out;
                          for (const toml::node& element : *array) {
                            const auto* s = element.as_string();
                            if (s == nullptr) {
                              throw BadValue{"expected " + std::string(kExpected) + ", got an array holding " +
                                                 std::string(kind_of(element)),
                                             element.source().begin.line};
                            }
                            out.push_back(s->get());
                          }
                          if (out.empty()) throw BadValue{"expected at least one address, got an empty array"};
                          return out;
                        },
                        [&](Member<std::string>) {
                          if (const auto* s = node.as_string()) return std::vector<std::string>{s->get()};
                          throw wrong("a string");
                        },
                        [&](Member<unsigned>) {
                          if (node.is_integer()) return integer();
                          throw wrong("an integer");
                        },
                        [&](Member<Millis>) {
                          if (const auto* s = node.as_string()) return std::vector<std::string>{s->get()};
                          if (node.is_integer()) return integer();
                          throw wrong("a duration string such as \"10s\"");
                        },
                        [&](Member<std::uint64_t>) {
                          if (const auto* s = node.as_string()) return std::vector<std::string>{s->get()};
                          if (node.is_integer()) return integer();
                          throw wrong(spec.check == Check::kPositiveCount || spec.check == Check::kCount
                                          ? "an integer"
                                          : "an integer or a size string such as \"8MiB\"");
                        },
                        [&](Member<bool>) {
                          if (const auto* b = node.as_boolean())
                            return std::vector<std::string>{b->get() ? "true" : "false"};
                          throw wrong("true or false");
                        },
                        [&](Member<AbortBudget>) {
                          if (const auto* s = node.as_string()) return std::vector<std::string>{s->get()};
                          throw wrong("a budget string such as \"30s/8MiB\"");
                        },
                    },
                    spec.field);
}

// Read ourselves rather than toml::parse_file() so that the error carries errno's reason.
std::string read_config_file(const std::string& path) {
  auto fail = [&](int err) {
    return ConfigError(std::string(kConfigFlag) + ": cannot read " + quote(path) + ": " + std::strerror(err));
  };
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw fail(errno);
  std::string text;
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail(errno);  // EISDIR for a directory
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

using Entries = std::vector<std::pair<const toml::key*, const toml::node*>>;

// toml::table is ordered by key; problems are reported in file order instead.
Entries in_file_order(const toml::table& table) {
  Entries entries;
  for (const auto& [key, node] : table) entries.emplace_back(&key, &node);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first->source().begin.line < b.first->source().begin.line; });
  return entries;
}

// The route's upstreams: an array of strings, each http://HOST:PORT or unix:/path.
std::vector<std::string> table_upstreams(const toml::node& node) {
  const toml::array* array = node.as_array();
  if (array == nullptr) throw BadValue{"expected an array of strings, got " + std::string(kind_of(node))};
  if (array->empty()) throw BadValue{"expected at least one upstream, got an empty array"};
  std::vector<std::string> out;
  for (const toml::node& element : *array) {
    const auto* s = element.as_string();
    if (s == nullptr) {
      throw BadValue{"expected an array of strings, got an array holding " + std::string(kind_of(element)),
                     element.source().begin.line};
    }
    std::string error;
    auto address = proxy::parse_upstream(s->get(), error);
    if (!address) throw BadValue{escape(error), element.source().begin.line};
    out.push_back(std::move(*address));
  }
  return out;
}

// Table `index` (from 1) of the proxy array. Errors name it "proxy #N", with its prefix once known.
ProxyTable load_proxy_table(const std::string& path, std::size_t index, const toml::table& table) {
  std::string label = "proxy #" + std::to_string(index);
  auto fail = [&](unsigned line, std::string_view key, const std::string& message) {
    return ConfigError(where(path, line) + label + ": " + (key.empty() ? "" : std::string(key) + ": ") + message);
  };
  auto required = [&](std::string_view key) -> const toml::node& {
    const toml::node* node = table.get(key);
    if (node == nullptr) throw fail(table.source().begin.line, "", "missing key " + quote(key));
    return *node;
  };
  ProxyTable out;
  // The prefix first, so that every later message can name the route by it.
  const toml::node& prefix = required("prefix");
  const auto* text = prefix.as_string();
  if (text == nullptr)
    throw fail(prefix.source().begin.line, "prefix", "expected a string, got " + std::string(kind_of(prefix)));
  std::string error;
  auto normalised = proxy::parse_prefix(text->get(), error);
  if (!normalised) throw fail(prefix.source().begin.line, "prefix", escape(error));
  out.route.prefix = std::move(*normalised);
  label += " (prefix " + quote(out.route.prefix) + ")";
  const toml::node& upstreams = required("upstreams");
  try {
    out.route.upstreams = table_upstreams(upstreams);
  } catch (const BadValue& e) {
    throw fail(e.line > 0 ? e.line : upstreams.source().begin.line, "upstreams", e.message);
  }
  for (const auto& [key, node] : in_file_order(table)) {
    if (key->str() == "prefix" || key->str() == "upstreams") continue;
    std::string hint;
    const OptionSpec* spec = route_option(key->str(), hint);
    if (spec == nullptr) throw fail(key->source().begin.line, "", "unknown key " + quote(key->str()) + hint);
    try {
      std::vector<std::string> values = toml_values(*spec, *node);
      ServeConfig scratch;  // checked now, applied over the final global settings later
      apply(*spec, scratch, values);
      out.keys.emplace_back(spec, std::move(values));
    } catch (const BadValue& e) {
      throw fail(e.line > 0 ? e.line : node->source().begin.line, spec->key, e.message);
    }
  }
  return out;
}

// `proxy`: strings in the flag's form, tables ([[proxy]] or inline), or both mixed in one array.
void load_proxy(const std::string& path, const OptionSpec& spec, const toml::node& node, ServeConfig& cfg,
                std::vector<ProxyTable>& tables) {
  std::vector<std::string> specs;
  const toml::array* array = node.as_array();
  if (array == nullptr || array->empty()) {
    specs = toml_values(spec, node);  // a single string, or the usual message
  } else {
    std::size_t index = 0;
    for (const toml::node& element : *array) {
      ++index;
      if (const auto* s = element.as_string()) {
        specs.push_back(s->get());
      } else if (const auto* t = element.as_table()) {
        tables.push_back(load_proxy_table(path, index, *t));
      } else {
        throw BadValue{"expected strings or tables, got " + std::string(kind_of(element)), element.source().begin.line};
      }
    }
  }
  if (!specs.empty()) apply(spec, cfg, specs);
}

// [tls]: the tls_* settings under their names without the prefix (listen, cert, key,
// handshake_timeout, self_signed), so that a file reads `[tls] cert = ["a.pem"]`.
void load_tls_table(const std::string& path, const toml::table& table, ServeConfig& cfg) {
  for (const auto& [key, node] : in_file_order(table)) {
    const OptionSpec* spec = find_by_key("tls_" + std::string(key->str()));
    if (spec == nullptr || key->str().starts_with("tls_"))
      throw ConfigError(where(path, key->source().begin.line) + "unknown key " +
                        quote("tls." + std::string(key->str())));
    try {
      apply(*spec, cfg, toml_values(*spec, *node));
    } catch (const BadValue& e) {
      unsigned line = e.line > 0 ? e.line : node->source().begin.line;
      throw ConfigError(where(path, line) + "tls." + std::string(key->str()) + ": " + e.message);
    }
  }
}

}  // namespace

void load_config_file(const std::string& path, ServeConfig& cfg, std::vector<ProxyTable>& tables) {
  std::string text = read_config_file(path);
  if (auto bad = toml_unreadable(text))
    throw ConfigError(where(path, bad->line) + "invalid TOML: " + std::string(bad->why));
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    std::string at = begin.line > 0 ? ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) : "";
    throw ConfigError(escape(path) + at + ": invalid TOML: " + escape(e.description()));
  }
  for (const auto& [key, node] : in_file_order(table)) {
    if (const toml::table* tls = node->as_table(); tls != nullptr && key->str() == "tls") {
      load_tls_table(path, *tls, cfg);
      continue;
    }
    const OptionSpec* spec = find_by_key(key->str());
    if (spec == nullptr) throw ConfigError(where(path, key->source().begin.line) + "unknown key " + quote(key->str()));
    try {
      if (spec->check == Check::kProxy) {
        load_proxy(path, *spec, *node, cfg, tables);
      } else {
        apply(*spec, cfg, toml_values(*spec, *node));
      }
    } catch (const BadValue& e) {
      unsigned line = e.line > 0 ? e.line : node->source().begin.line;
      throw ConfigError(where(path, line) + std::string(spec->key) + ": " + e.message);
    }
  }
}

}  // namespace unbroken::app::serve_options
