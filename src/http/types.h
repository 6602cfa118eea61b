#pragma once
// The vocabulary of departures, as the server uses it. Phase, Outcome, TimerKind and their wire
// names are declared once in base/record_schema.h, shared with analyze; this header brings them
// into http:: so that the connection code names them as its own.

#include "base/record_schema.h"

namespace unbroken::http {

using schema::is_departure;
using schema::kClientTimerCount;
using schema::kOutcomeCount;
using schema::kPhaseCount;
using schema::kTimerCount;
using schema::name;
using schema::Outcome;
using schema::Phase;
using schema::TimerKind;

}  // namespace unbroken::http
