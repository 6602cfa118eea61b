#pragma once
// Diagnostic routes (`serve --diag`): reproduce production's slow, large and abandoned responses
// on demand.

#include "http/router.h"

namespace unbroken::app {

// GET /diag/bytes/{n}[?chunked=1], GET /diag/delay/{ms}, GET /diag/work/{ms} (worker pool),
// GET /diag/drip?bytes=N&duration_ms=M, GET /diag/status/{code}, POST /diag/echo,
// POST /diag/slow-sink?delay_ms=N&window=BYTES (a slow consumer of a streamed body).
void mount_diag_routes(http::Router& router);

}  // namespace unbroken::app
