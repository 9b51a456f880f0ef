/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * image-pin STORE REFERENCE: what a sandbox that runs an image does to the store, alone. Looks the image
 * up (image_store_lookup), pins it (image_store_pin), prints its layer directories topmost first and then
 * "pinned", and holds the pin until standard input ends (or the process is killed). Used by
 * tests/integration/test_image_store.py to show that prune keeps what a running user holds.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "image.h"

int main(int argc, char *argv[]) {
        ImageReport rep = {};
        ImageStore *s = NULL;
        Image *img = NULL;
        ImagePin *pin = NULL;
        char buf[256];

        if (argc != 3) {
                fprintf(stderr, "usage: image-pin STORE REFERENCE\n");
                return 2;
        }
        int r = image_store_open(argv[1], false, &s, &rep);
        if (r >= 0)
                r = image_store_lookup(s, argv[2], &img, &rep);
        if (r >= 0)
                r = image_store_pin(s, img, &pin, &rep);
        if (r < 0) {
                fprintf(stderr, "image-pin: %s\n", rep.error[0] ? rep.error : strerror(-r));
                image_free(img);
                image_store_free(s);
                return 1;
        }
        for (size_t i = 0; i < img->n_layers; i++)
                printf("%s\n", img->layers[i].path);
        printf("pinned\n");
        fflush(stdout);
        while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                ;
        image_pin_release(pin);
        image_free(img);
        image_store_free(s);
        return 0;
}
