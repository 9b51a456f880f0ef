/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict number parsing: the whole string must be a number in range, or -EINVAL/-ERANGE. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int safe_atou64(const char *s, uint64_t *ret);
int safe_atou32(const char *s, uint32_t *ret);
/* "64m" → 67108864: k, m, g, t suffixes in either case (powers of 1024), optionally followed by "b"
 * or "ib"; with a suffix, a fraction of up to 6 decimals ("1.5g", rounded down to whole bytes).
 * -EINVAL for anything else (a fraction without a suffix too), -ERANGE when it does not fit. */
int parse_size(const char *s, uint64_t *ret);

/* BYTES for a message: "2 GiB", "1536 MiB", "100 bytes" (exact: the largest unit that divides it).
 * Returns BUF. FORMAT_SIZE_MAX is enough for any value. */
#define FORMAT_SIZE_MAX 32
const char *format_size(uint64_t bytes, char *buf, size_t size);
