/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What every fuzz target shares: libFuzzer's entry point (the same function is called by replay-main.c for
 * the corpus replays of suite fuzz-regress) and ASSERT() for the properties a target checks beyond "does
 * not crash": a violated one is reported with its place and aborts, which both libFuzzer and the replay
 * count as a failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(x)                                                                              \
        do {                                                                                   \
                if (!(x)) {                                                                    \
                        fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                               \
                }                                                                              \
        } while (false)
