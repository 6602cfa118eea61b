#pragma once
// A BodySink that keeps every body byte it is given, for parser tests.

#include <string>
#include <string_view>

#include "http/request_parser.h"

namespace unbroken::testing {

struct CollectBody : http::BodySink {
  std::string body;
  void on_body(std::string_view chunk) override { body.append(chunk); }
};

}  // namespace unbroken::testing
