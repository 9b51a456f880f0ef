/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of common/errbuf.c, the messages library code leaves for its caller: the message is cut to
 * the buffer, %m names the error given (not errno), the error is returned; a NULL or empty buffer is
 * left alone; errbuf_set_first() keeps the first message and refuses a non-negative error. Output is TAP.
 */
#include <errno.h>
#include <string.h>

#include "errbuf.h"
#include "macro.h"
#include "tap.h"

static int test_set(void) {
        char buf[64] = "old";

        errno = EAGAIN;
        CHECK_EQ(errbuf_set(buf, sizeof buf, -ENOENT, "cannot open '%s': %m", "x"), -ENOENT);
        CHECK_STREQ(buf, "cannot open 'x': No such file or directory");
        CHECK_EQ(errbuf_set(buf, 8, -EIO, "%s", "0123456789"), -EIO);
        CHECK_STREQ(buf, "0123456"); /* cut, terminated */
        CHECK_EQ(errbuf_set(NULL, 0, -EPERM, "%s", "nowhere"), -EPERM);
        CHECK_EQ(errbuf_set(buf, 0, -EPERM, "%s", "nowhere"), -EPERM);
        CHECK_STREQ(buf, "0123456");
        return 0;
}

static int test_first(void) {
        char buf[64] = "";

        CHECK_EQ(errbuf_set_first(buf, sizeof buf, -EFBIG, "first: %m"), -EFBIG);
        CHECK_EQ(errbuf_set_first(buf, sizeof buf, -EIO, "second: %m"), -EIO);
        CHECK_STREQ(buf, "first: File too large");
        CHECK_EQ(errbuf_set_first(NULL, 0, -EIO, "nowhere"), -EIO);
        /* Not an error: refused, so that a failure path can never report success. */
        CHECK_EQ(errbuf_set_first(buf, sizeof buf, 0, "no error"), -EINVAL);
        CHECK_STREQ(buf, "first: File too large");
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(set),
                TAP_TEST(first),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
