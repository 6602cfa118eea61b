#pragma once
// Result<T>: a value or a typed errno. Fallible calls on the data path return these instead of
// throwing, and [[nodiscard]] makes an ignored error a compile error (-Werror).

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include "base/check.h"

namespace unbroken {

struct Errno {
  int code = 0;
  [[nodiscard]] bool would_block() const { return code == EAGAIN || code == EWOULDBLOCK; }
  [[nodiscard]] std::string message() const { return std::strerror(code); }
  friend bool operator==(Errno a, Errno b) = default;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Errno e) : v_(e) {}                 // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() {
    UB_CHECK(ok());
    return std::get<0>(v_);
  }
  const T& value() const {
    UB_CHECK(ok());
    return std::get<0>(v_);
  }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  [[nodiscard]] Errno error() const {
    UB_CHECK(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Errno> v_;
};

// Result<void>: success or a typed errno.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Errno e) : e_(e) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool ok() const { return e_.code == 0; }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] Errno error() const { return e_; }

 private:
  Errno e_{};
};

}  // namespace unbroken
