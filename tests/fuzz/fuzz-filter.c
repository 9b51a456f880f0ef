/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for filter_compile_text(), the parser and compiler of seccomp policy files
 * (sandbox-run --seccomp FILE; the file may come from whoever submits the job). The input is the
 * policy text, copied into a heap buffer of exactly its size and not NUL-terminated, so that ASan
 * sees any read past its end. Nothing is installed. Properties: a compiled program has 1..4096 BPF
 * instructions and leaves *ret_error alone; a failure leaves *ret_program alone and returns -EINVAL
 * for anything wrong with the text, with a message "NAME:LINE: ..." or "NAME: ..." whose line
 * number is within the input.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime/filter.h"
#include "fuzz.h"

/* Enough for lines over FILTER_POLICY_MAX_LINE; the size limit itself is a unit test. */
#define FUZZ_MAX_INPUT (16 * 1024)
#define FUZZ_NAME "fuzz.policy"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        log_set_max_level(-1); /* below LOG_EMERG: nothing is printed */
        return 0;
}

static unsigned count_lines(const uint8_t *data, size_t size) {
        unsigned n = 0;
        for (size_t i = 0; i < size; i++)
                if (data[i] == '\n')
                        n++;
        return n + 1;
}

static void check_error(const char *error, const uint8_t *data, size_t size) {
        const char *p;
        unsigned long line;
        char *end;

        if (!error)
                return; /* out of memory while formatting */
        ASSERT(strncmp(error, FUZZ_NAME ":", strlen(FUZZ_NAME ":")) == 0);
        p = error + strlen(FUZZ_NAME ":");
        if (*p == ' ')
                return; /* not about one line */
        line = strtoul(p, &end, 10);
        ASSERT(end != p && *end == ':');
        ASSERT(line >= 1 && line <= count_lines(data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FilterProgram *marker = (FilterProgram *) (uintptr_t) 0x1, *program = marker;
        char *error = (char *) (uintptr_t) 0x1;
        char *text;
        int r;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        log_set_max_level(-1);

        text = malloc(size ? size : 1);
        ASSERT(text);
        if (size)
                memcpy(text, data, size);

        r = filter_compile_text(FUZZ_NAME, text, size, &program, &error);
        if (r >= 0) {
                ASSERT(program && program != marker);
                ASSERT(filter_program_size(program) >= 1 && filter_program_size(program) <= 4096);
                ASSERT(error == (char *) (uintptr_t) 0x1);
                filter_program_free(program);
        } else {
                ASSERT(program == marker);
                ASSERT(r == -EINVAL || r == -ENOMEM);
                ASSERT(error != (char *) (uintptr_t) 0x1);
                check_error(error, data, size);
                free(error);
        }
        free(text);
        return 0;
}
