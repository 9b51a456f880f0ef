/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of the image store (image/store.c, fetch.c, unpack.c) on a scratch directory, with an OCI
 * layout the test writes itself (its layer made by layer/tar.c's export): import, lookup by name, by ID
 * and by ID prefix, layer directories topmost first, tag and untag, a pin that keeps an untagged image's
 * layers from gc until it is released, gc refusing a busy store, a store others can enter refused, and a
 * layout whose layer does not match the config's diff_id leaving nothing behind. Runs unprivileged.
 * Output is TAP.
 */
#include <fcntl.h>
#include <sys/file.h>

#include "image.h"
#include "sha256.h"
#include "tap.h"
#include "tar.h"

static char scratch[256];

static int write_at(int dirfd, const char *path, const void *data, size_t size) {
        int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, data, size);
        close(fd);
        return n == (ssize_t) size ? 0 : -EIO;
}

/* blobs/sha256/<hex> of LAYOUT_FD; its digest into RET. */
static int put_blob(int layout_fd, const void *data, size_t size, char ret[static DIGEST_STRING_MAX]) {
        char path[128];
        int r = sha256_buffer(data, size, ret);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "blobs/sha256/%s", digest_hex(ret));
        return write_at(layout_fd, path, data, size);
}

static int read_all(const char *path, char **ret, size_t *ret_size) {
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        char *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        *ret = buf;
        *ret_size = n;
        return 0;
}

/* A layout at scratch/NAME with one image "localhost/unit:1" of one layer holding a/f = CONTENT; with
 * LIE, its config names another diff_id. Returns the layer's diff_id in DIFF_ID. */
static int make_layout(const char *name, const char *content, bool lie, char diff_id[static DIGEST_STRING_MAX]) {
        char path[512], cfg_digest[DIGEST_STRING_MAX], man_digest[DIGEST_STRING_MAX];
        snprintf(path, sizeof(path), "%s/src-%s", scratch, name);
        CHECK(mkdir(path, 0755) == 0);
        int src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(src >= 0);
        CHECK(mkdirat(src, "a", 0755) == 0);
        CHECK_EQ(write_at(src, "a/f", content, strlen(content)), 0);

        snprintf(path, sizeof(path), "%s/%s", scratch, name);
        CHECK(mkdir(path, 0755) == 0);
        int lay = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(lay >= 0);
        CHECK(mkdirat(lay, "blobs", 0755) == 0 && mkdirat(lay, "blobs/sha256", 0755) == 0);
        snprintf(path, sizeof(path), "%s/%s.tar", scratch, name);
        int out = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(out >= 0);
        TarReport rep = {};
        CHECK_EQ(tar_export(src, out, TAR_COMPRESS_NONE, NULL, &rep), 0);
        close(out);
        close(src);
        _cleanup_free_ char *tar = NULL;
        size_t tar_size = 0;
        CHECK_EQ(read_all(path, &tar, &tar_size), 0);
        char layer_digest[DIGEST_STRING_MAX];
        CHECK_EQ(put_blob(lay, tar, tar_size, layer_digest), 0);
        strcpy(diff_id, layer_digest);

        char cfg[1024], man[2048], index[1024];
        snprintf(cfg, sizeof(cfg), "{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": {\"Env\": [\"A=1\"],"
                 " \"Cmd\": [\"/a/f\"]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"%s\"]}}",
                 lie ? "sha256:0000000000000000000000000000000000000000000000000000000000000000" : diff_id);
        CHECK_EQ(put_blob(lay, cfg, strlen(cfg), cfg_digest), 0);
        snprintf(man, sizeof(man), "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                 " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"%s\", \"size\": %zu},"
                 " \"layers\": [{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"%s\", \"size\": %zu}]}",
                 cfg_digest, strlen(cfg), layer_digest, tar_size);
        CHECK_EQ(put_blob(lay, man, strlen(man), man_digest), 0);
        snprintf(index, sizeof(index), "{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": "
                 "\"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"%s\", \"size\": %zu, \"annotations\": "
                 "{\"org.opencontainers.image.ref.name\": \"localhost/unit:1\"}}]}", man_digest, strlen(man));
        CHECK_EQ(write_at(lay, "index.json", index, strlen(index)), 0);
        CHECK_EQ(write_at(lay, "oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}", 31), 0);
        close(lay);
        return 0;
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

static int test_import_lookup_gc(void) {
        char store_path[512], layout[512], diff_id[DIGEST_STRING_MAX], layer_path[1024];
        snprintf(store_path, sizeof(store_path), "%s/store", scratch);
        snprintf(layout, sizeof(layout), "%s/layout", scratch);
        CHECK_EQ(make_layout("layout", "hello\n", false, diff_id), 0);

        ImageReport rep = {};
        _cleanup_(image_store_freep) ImageStore *s = NULL;
        CHECK_EQ(image_store_open(store_path, true, &s, &rep), 0);
        struct stat st;
        CHECK(stat(store_path, &st) == 0 && (st.st_mode & 07777) == 0700);

        Image **l = NULL;
        size_t n = 0;
        ImageImportOptions o = {};
        CHECK_EQ(image_import(s, layout, &o, &l, &n, &rep), 0);
        CHECK_U64(n, 1);
        CHECK_U64(rep.layers_new, 1);
        char id[DIGEST_STRING_MAX];
        strcpy(id, l[0]->id);
        image_list_free(l, n);

        _cleanup_(image_freep) Image *img = NULL;
        CHECK_EQ(image_store_lookup(s, "localhost/unit:1", &img, &rep), 0);
        CHECK_STREQ(img->id, id);
        CHECK_U64(img->n_layers, 1);
        CHECK_STREQ(img->layers[0].diff_id, diff_id);
        CHECK_STREQ(img->refs[0], "localhost/unit:1");
        CHECK_STREQ(img->config->cmd[0], "/a/f");
        snprintf(layer_path, sizeof(layer_path), "%s/a/f", img->layers[0].path);
        CHECK(exists(layer_path));
        CHECK_U64(img->layers[0].size, 6);

        Image *other = NULL;
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "%.12s", digest_hex(id));
        CHECK_EQ(image_store_lookup(s, prefix, &other, &rep), 0);
        CHECK_STREQ(other->id, id);
        image_free(other);
        CHECK_EQ(image_store_lookup(s, id, &other, &rep), 0);
        image_free(other);
        rep = (ImageReport) {};
        CHECK_EQ(image_store_lookup(s, "localhost/unit:2", &other, &rep), -ENOENT);
        CHECK(strstr(rep.error, "sandbox-image pull localhost/unit:2"));
        CHECK_EQ(image_store_lookup(s, "Not A Reference", &other, &rep), -EINVAL);

        /* Importing again unpacks nothing. */
        rep = (ImageReport) {};
        CHECK_EQ(image_import(s, layout, &o, NULL, NULL, &rep), 0);
        CHECK_U64(rep.layers_new, 0);

        CHECK_EQ(image_store_tag(s, "localhost/unit:1", "localhost/alias", &rep), 0);
        CHECK_EQ(image_store_lookup(s, "localhost/alias:latest", &other, &rep), 0);
        image_free(other);
        CHECK_EQ(image_store_tag(s, "localhost/unit:1", "localhost/x@sha256:0000000000000000000000000000000000000000000000000000000000000000", &rep), -EINVAL);

        /* A pinned image loses its names and stays; released, gc takes it. */
        ImagePin *pin = NULL;
        CHECK_EQ(image_store_pin(s, img, &pin, &rep), 0);
        char **removed = NULL;
        CHECK_EQ(image_store_untag(s, id, &removed, &rep), 0);
        CHECK_U64(strv_length(removed), 2);
        strv_free(removed);
        ImageGcReport g = {};
        CHECK_EQ(image_store_gc(s, false, &g, &rep), 0);
        CHECK_U64(g.pins_live, 1);
        CHECK_U64(g.layers_removed, 0);
        CHECK_U64(g.blobs_removed, 1); /* the manifest: a pin keeps the config and the layers */
        CHECK(exists(layer_path));

        /* Someone is using the store: gc without waiting says so. */
        char lock[600];
        snprintf(lock, sizeof(lock), "%s/lock", store_path);
        int lfd = open(lock, O_RDONLY | O_CLOEXEC);
        CHECK(lfd >= 0 && flock(lfd, LOCK_SH) == 0);
        rep = (ImageReport) {};
        CHECK_EQ(image_store_gc(s, false, &g, &rep), -EBUSY);
        close(lfd);

        image_pin_release(pin);
        CHECK_EQ(image_store_gc(s, false, &g, &rep), 0);
        CHECK_U64(g.layers_removed, 1);
        CHECK_U64(g.blobs_removed, 1);
        CHECK(!exists(layer_path));
        CHECK_EQ(image_store_lookup(s, id, &other, &rep), -ENOENT);
        return 0;
}

static int test_refused(void) {
        char path[512], diff_id[DIGEST_STRING_MAX];
        ImageReport rep = {};
        ImageStore *s = NULL;

        snprintf(path, sizeof(path), "%s/open-store", scratch);
        CHECK(mkdir(path, 0755) == 0);
        CHECK_EQ(image_store_open(path, true, &s, &rep), -EPERM);
        CHECK(strstr(rep.error, "chmod 0700"));

        CHECK_EQ(make_layout("liar", "lie\n", true, diff_id), 0);
        snprintf(path, sizeof(path), "%s/store2", scratch);
        rep = (ImageReport) {};
        CHECK_EQ(image_store_open(path, true, &s, &rep), 0);
        char layout[512];
        snprintf(layout, sizeof(layout), "%s/liar", scratch);
        ImageImportOptions o = {};
        CHECK_EQ(image_import(s, layout, &o, NULL, NULL, &rep), -EBADMSG);
        CHECK(strstr(rep.error, "but the image config says"));
        image_store_free(s);
        /* Nothing kept: no layer, no temporary. */
        char sub[600];
        snprintf(sub, sizeof(sub), "%s/layers/sha256", path);
        DIR *d = opendir(sub);
        CHECK(d);
        struct dirent *de;
        unsigned count = 0;
        while ((de = readdir(d)))
                count += de->d_name[0] != '.';
        closedir(d);
        CHECK_U64(count, 0);
        snprintf(sub, sizeof(sub), "%s/tmp", path);
        CHECK(rmdir(sub) == 0); /* empty */
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(import_lookup_gc),
                TAP_TEST(refused),
        };
        if (tap_scratch_dir(scratch, sizeof(scratch), "test-image-store") < 0)
                return 1;
        int r = tap_run(tests, ELEMENTSOF(tests));
        tap_remove_tree(scratch);
        return r;
}
