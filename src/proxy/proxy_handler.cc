#include "proxy/proxy_handler.h"

#include "base/check.h"
#include "proxy/upstream_call.h"

namespace unbroken::proxy {

http::AsyncHandler make_proxy_handler(std::shared_ptr<const ProxySettings> settings) {
  UB_CHECK(settings->group != nullptr);  // app::make_proxy_settings makes it
  if (!settings->pool_idle)
    settings->pool_idle = std::make_unique<std::atomic<std::int64_t>[]>(settings->upstreams.size());
  return [settings = std::move(settings)](const http::ExchangePtr& ex) {
    std::make_shared<UpstreamCall>(settings, ex)->start();
  };
}

}  // namespace unbroken::proxy
