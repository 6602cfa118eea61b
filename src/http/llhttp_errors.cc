#include "http/llhttp_errors.h"

#include <string_view>

namespace unbroken::http {

const char* shared_error_text(llhttp_errno_t err, const char* llhttp_reason) {
  std::string_view reason = llhttp_reason != nullptr ? llhttp_reason : "";
  switch (err) {
    case HPE_INVALID_VERSION:
      // llhttp says "Invalid HTTP version" for digits it does not accept (HTTP/1.2, HTTP/3.0):
      // well-formed, but not ours. Anything else is malformed.
      return reason == "Invalid HTTP version" ? kUnsupportedVersion.data() : "malformed HTTP version";
    case HPE_INVALID_HEADER_TOKEN: return "invalid character in a header field";
    case HPE_INVALID_CONTENT_LENGTH: return "invalid Content-Length";
    case HPE_UNEXPECTED_CONTENT_LENGTH:
      // One code for two problems; llhttp's reason tells them apart.
      return reason == "Duplicate Content-Length" ? "more than one Content-Length"
                                                  : "Content-Length together with Transfer-Encoding";
    case HPE_INVALID_TRANSFER_ENCODING: return "invalid Transfer-Encoding";
    case HPE_INVALID_CHUNK_SIZE: return "invalid chunk size";
    case HPE_CR_EXPECTED: return "bare LF: lines end with CRLF";
    case HPE_LF_EXPECTED: return "CR without LF: lines end with CRLF";
    case HPE_UNEXPECTED_SPACE: return "unexpected whitespace";
    default: return nullptr;
  }
}

}  // namespace unbroken::http
