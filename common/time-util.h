/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clocks, in microseconds. */
#pragma once

#include <stdint.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

/* CLOCK_MONOTONIC. */
uint64_t now_usec(void);
/* CLOCK_REALTIME. */
uint64_t realtime_usec(void);
