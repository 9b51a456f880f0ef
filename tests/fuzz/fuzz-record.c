/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the record of a detached sandbox (runtime/record.c), which sandboxd reads back from its
 * state directory at its start to adopt the sandboxes its predecessor created. The input is the file's
 * bytes. Properties: a record that decodes has a valid id, pids in range, a filter of whole instructions
 * within the bound, owner bytes within theirs, network fields that go together; it encodes again, and that
 * encoding decodes to the same fields and encodes to the same bytes (canonical form).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "msg.h"
#include "runtime/record.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SandboxRecord r = {}, again = {};
        WireBuffer b1 = {}, b2 = {};
        const char *e = NULL;

        if (size > RECORD_SIZE_MAX + 1024)
                return 0;
        if (record_decode(data, size, &r, &e) < 0) {
                ASSERT(e);
                return 0;
        }
        ASSERT(msg_id_is_valid(r.id));
        ASSERT(r.init.pid > 0 && r.server.pid > 0 && r.keeper.pid > 0);
        ASSERT(r.host_first >= 65536);
        ASSERT(r.filter_size % 8 == 0 && r.filter_size <= RECORD_FILTER_MAX);
        ASSERT(r.owner_size <= RECORD_OWNER_MAX);
        ASSERT(!r.net_table || strlen(r.net_table) <= 31);
        ASSERT(record_encode(&r, &b1) == 0);
        ASSERT(record_decode(b1.data, b1.size, &again, &e) == 0);
        ASSERT(streq(again.id, r.id) && again.init.pid == r.init.pid && again.host_first == r.host_first &&
               again.filter_size == r.filter_size && again.owner_size == r.owner_size &&
               again.cap_set == r.cap_set && again.spec.net == r.spec.net);
        ASSERT(record_encode(&again, &b2) == 0);
        ASSERT(b1.size == b2.size && memcmp(b1.data, b2.data, b1.size) == 0);
        record_done(&r);
        record_done(&again);
        wire_buffer_done(&b1);
        wire_buffer_done(&b2);
        return 0;
}
