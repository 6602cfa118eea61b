#include "chaos/kind.h"

#include <array>

namespace unbroken::chaos {
namespace {

struct KindInfo {
  std::string_view name;
  std::string_view description;
};

constexpr std::array<KindInfo, kKindCount> kKinds{{
    {"good", "keep-alive requests; checks the status and the whole body"},
    {"hangup-wait", "sends a request, closes before any response (the stop button while the server computes)"},
    {"abort-head", "sends part of a request head, then FIN"},
    {"rst-head", "sends part of a request head, then RST"},
    {"abort-body", "sends a POST head and part of its body, then FIN"},
    {"abort-response", "reads part of the response, then FIN"},
    {"rst-response", "reads part of the response, then RST"},
    {"slowloris", "trickles the request head, one byte per --trickle"},
    {"slow-body", "trickles a POST body, one byte per --trickle"},
    {"slow-read", "4 KiB receive buffer, reads 1 KiB per --trickle"},
    {"stall", "reads the response head, then stops reading"},
    {"pipeline-close", "pipelines three requests, then closes at once"},
    {"idle", "connects and never sends a byte"},
    {"refresh-storm", "repeats one request, abandoning each at a random moment (FIN or RST)"},
    {"tls-abort-handshake", "https: sends a ClientHello, then FIN"},
    {"tls-rst-handshake", "https: sends a ClientHello, then RST"},
    {"tls-slow-handshake", "https: trickles a ClientHello, 4 bytes per --trickle"},
    {"tls-garbage", "https: sends random bytes where a ClientHello belongs"},
    {"plain-to-tls", "https: sends a plain HTTP request to the TLS port, reads the answer"},
}};

constexpr std::array<std::string_view, kReactionCount> kReactions{
    "answered", "closed_408", "closed_silently", "reset", "nothing", "left", "connect_failed", "tls_error"};

}  // namespace

std::string_view name(Kind k) {
  return kKinds[static_cast<std::size_t>(k)].name;
}

std::string_view describe(Kind k) {
  return kKinds[static_cast<std::size_t>(k)].description;
}

std::optional<Kind> parse_kind(std::string_view s) {
  for (std::size_t i = 0; i < kKindCount; ++i)
    if (kKinds[i].name == s) return static_cast<Kind>(i);
  return std::nullopt;
}

bool tls_only(Kind k) {
  return k >= Kind::kTlsAbortHandshake;
}

std::string_view name(Reaction r) {
  return kReactions[static_cast<std::size_t>(r)];
}

}  // namespace unbroken::chaos
