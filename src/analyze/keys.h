#pragma once
// The keys requests are grouped by: a normalised route, a client address and its network, and a
// user-agent family. Each writes into a caller-owned buffer so that a steady stream allocates nothing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace unbroken::analyze {

// "/users/17/orders?x=1" -> "/users/{id}/orders". A segment becomes {id} when it is a number, a UUID,
// a hex token of 8+ characters with a digit, or a long (16+) token of letters and digits with a digit
// (opaque ids such as base64url keys). Words, file names and versions ("v2") stay.
void normalise_route(std::string_view path, std::string& out);

// The pattern in the server's own route name (the record's `route`): "GET /diag/delay/{ms}" ->
// "/diag/delay/{ms}". Empty for a name without one ("(static)", "(unmatched)") or with a trailing
// wildcard (a proxy's "* /api/*"), whose requests are grouped by their normalised path instead.
[[nodiscard]] std::string_view route_pattern(std::string_view route);

// The address without its port: "10.0.0.7:5311" -> "10.0.0.7", "[2001:db8::1]:443" -> "2001:db8::1".
[[nodiscard]] std::string_view client_address(std::string_view client);

// "10.0.0.7" -> "10.0.0.0/24", "2001:db8:1:2::5" -> "2001:db8:1:2::/64". False when the text is no
// IP address (a hostname in a log), in which case out is left empty.
bool client_network(std::string_view address, std::string& out);

// A parsed "--client" filter: an address, or a network in CIDR notation.
class ClientFilter {
 public:
  // nullopt when the text is neither.
  [[nodiscard]] static std::optional<ClientFilter> parse(std::string_view text);
  [[nodiscard]] bool matches(std::string_view address) const;

 private:
  unsigned char bytes_[16] = {};
  int family_ = 0;
  int prefix_ = 0;
};

// "Chrome", "Firefox", "Safari", "curl", "Googlebot", ... or the first product token; "-" when empty.
[[nodiscard]] std::string_view ua_family(std::string_view ua, std::string& scratch);

}  // namespace unbroken::analyze
