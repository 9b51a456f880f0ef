/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of image/oci.c and image/ojson.c: OCI and Docker v2 schema 2 manifests, indexes and manifest
 * lists (platform choice), configs (Env, Entrypoint, Cmd, WorkingDir, User, diff_ids), a layout's
 * oci-layout and docker save's manifest.json; and the refusals that bound outside input: sizes, layer
 * and entry counts, nesting, duplicate keys, media types, digest algorithms, schema 1. Output is TAP.
 */
#include "oci.h"
#include "ojson.h"
#include "tap.h"

#define D(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
        c c c c c c c c c c c c c c c c
#define DA D("a")
#define DB D("b")
#define DC D("c")

static char err[512];

static int parse(const char *json, const char *type, OciDocument **ret) {
        err[0] = '\0';
        return oci_document_parse(json, strlen(json), type, ret, err, sizeof(err));
}

static int test_manifest(void) {
        static const char *m =
                "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"" DA "\", \"size\": 7},"
                " \"layers\": [{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"" DB "\", \"size\": 100},"
                "  {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\", \"digest\": \"" DC "\", \"size\": 5},"
                "  {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"" DC "\", \"size\": 5}],"
                " \"annotations\": {\"x\": \"y\"}}";
        _cleanup_(oci_document_freep) OciDocument *d = NULL;
        CHECK_EQ(parse(m, "application/vnd.oci.image.manifest.v1+json; charset=utf-8", &d), 0);
        CHECK_EQ(d->type, OCI_MT_OCI_MANIFEST);
        CHECK_STREQ(d->config.digest, DA);
        CHECK_U64(d->config.size, 7);
        CHECK_U64(d->n_layers, 3);
        CHECK_EQ(d->layers[0].type, OCI_MT_LAYER_GZIP);
        CHECK_EQ(d->layers[1].type, OCI_MT_LAYER_ZSTD);
        CHECK_EQ(d->layers[2].type, OCI_MT_LAYER_TAR);
        CHECK_U64(d->layers[0].size, 100);
        oci_document_free(d);
        d = NULL;
        /* Served as generic JSON: the document's own type counts. */
        CHECK_EQ(parse(m, "application/json", &d), 0);
        oci_document_free(d);
        d = NULL;
        /* Served as something else than it says: refused. */
        CHECK_EQ(parse(m, "application/vnd.docker.distribution.manifest.v2+json", &d), -EBADMSG);
        CHECK(strstr(err, "differs"));

        static const char *docker =
                "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\","
                " \"config\": {\"mediaType\": \"application/vnd.docker.container.image.v1+json\", \"digest\": \"" DA "\", \"size\": 7},"
                " \"layers\": [{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"digest\": \"" DB "\", \"size\": 1}]}";
        CHECK_EQ(parse(docker, NULL, &d), 0);
        CHECK_EQ(d->type, OCI_MT_DOCKER_MANIFEST);
        CHECK_EQ(d->layers[0].type, OCI_MT_LAYER_GZIP);
        oci_document_free(d);
        d = NULL;
        /* No mediaType at all (an OCI layout's manifest may omit it): told by its fields. */
        CHECK_EQ(parse("{\"schemaVersion\": 2, \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\","
                       " \"digest\": \"" DA "\", \"size\": 1}, \"layers\": []}", NULL, &d), 0);
        CHECK_EQ(d->type, OCI_MT_OCI_MANIFEST);
        CHECK_U64(d->n_layers, 0);
        return 0;
}

static int expect_refused(const char *json, const char *type, int r, const char *msg) {
        OciDocument *d = NULL;
        int k = parse(json, type, &d);
        if (k != r || d || !strstr(err, msg)) {
                printf("# got %d '%s', expected %d '%s' for %.120s\n", k, err, r, msg, json);
                oci_document_free(d);
                return -1;
        }
        return 0;
}

static int test_manifest_refused(void) {
        CHECK_EQ(expect_refused("{\"schemaVersion\": 1, \"name\": \"x\"}", NULL, -EOPNOTSUPP, "schema 1"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.docker.distribution.manifest.v1+prettyjws\"}",
                                NULL, -EOPNOTSUPP, "schema 1"), 0);
        CHECK_EQ(expect_refused("{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\"}", NULL, -EBADMSG,
                                "schemaVersion"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"text/html\"}", NULL, -EOPNOTSUPP,
                                "not an image manifest"), 0);
        CHECK_EQ(expect_refused("[1]", NULL, -EBADMSG, "not an object"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"schemaVersion\": 2}", NULL, -EBADMSG, "duplicate"), 0);
        CHECK_EQ(expect_refused("{\"a\": \"\\u0000\"}", NULL, -EBADMSG, "invalid JSON"), 0);
        CHECK_EQ(expect_refused("{\"a\": \"\xff\"}", NULL, -EBADMSG, "invalid JSON"), 0);
        /* An artifact, not an image. */
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                                " \"config\": {\"mediaType\": \"application/vnd.cncf.helm.config.v1+json\", \"digest\": \"" DA "\", \"size\": 1},"
                                " \"layers\": []}", NULL, -EOPNOTSUPP, "not a container image"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                                " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"sha512:00\", \"size\": 1},"
                                " \"layers\": []}", NULL, -EOPNOTSUPP, "only sha256"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                                " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"" DA "\", \"size\": -1},"
                                " \"layers\": []}", NULL, -EBADMSG, "invalid size"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                                " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"" DA "\", \"size\": 99999999},"
                                " \"layers\": []}", NULL, -E2BIG, "exceeds the limit"), 0);
        CHECK_EQ(expect_refused("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                                " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"" DA "\", \"size\": 1},"
                                " \"layers\": [{\"mediaType\": \"application/octet-stream\", \"digest\": \"" DB "\", \"size\": 1}]}",
                                NULL, -EOPNOTSUPP, "unsupported layer media type"), 0);

        /* 121 layers: over the bound. */
        size_t cap = 200 * 1024;
        _cleanup_free_ char *big = malloc(cap);
        CHECK(big);
        size_t o = (size_t) snprintf(big, cap, "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
                                     " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"" DA "\", \"size\": 1},"
                                     " \"layers\": [");
        for (int i = 0; i < 121; i++)
                o += (size_t) snprintf(big + o, cap - o, "%s{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", "
                                       "\"digest\": \"" DB "\", \"size\": 1}", i ? "," : "");
        snprintf(big + o, cap - o, "]}");
        CHECK_EQ(expect_refused(big, NULL, -E2BIG, "121 layers exceeds the limit of 120"), 0);

        /* Nesting: 64 levels parse, 65 do not. */
        char deep[400];
        o = (size_t) snprintf(deep, sizeof(deep), "{\"x\": ");
        for (int i = 0; i < 64; i++)
                deep[o++] = '[';
        for (int i = 0; i < 64; i++)
                deep[o++] = ']';
        snprintf(deep + o, sizeof(deep) - o, "}");
        CHECK_EQ(expect_refused(deep, NULL, -E2BIG, "nested deeper than 64"), 0);
        CHECK(ojson_depth_ok("{\"a\": \"[[[[[[[[[[\"}", 18, 2));
        CHECK(ojson_depth_ok("{\"a\": \"\\\"[[[[[\"}", 16, 2));
        CHECK(!ojson_depth_ok("[[[", 3, 2));
        return 0;
}

static int test_index(void) {
        static const char *ix =
                "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.index.v1+json\", \"manifests\": ["
                " {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"" DA "\", \"size\": 1,"
                "  \"platform\": {\"architecture\": \"arm64\", \"os\": \"linux\", \"variant\": \"v8\"}},"
                " {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"" DB "\", \"size\": 1,"
                "  \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\", \"variant\": \"v3\"}},"
                " {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"" DC "\", \"size\": 1,"
                "  \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"},"
                "  \"annotations\": {\"org.opencontainers.image.ref.name\": \"localhost/x:1\", \"io.containerd.image.name\": \"docker.io/library/x:1\"}},"
                " {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"" DA "\", \"size\": 1,"
                "  \"platform\": {\"architecture\": \"unknown\", \"os\": \"unknown\"}}]}";
        _cleanup_(oci_document_freep) OciDocument *d = NULL;
        const OciDescriptor *m = NULL;
        OciPlatform p;
        CHECK_EQ(parse(ix, NULL, &d), 0);
        CHECK_EQ(d->type, OCI_MT_OCI_INDEX);
        CHECK_U64(d->n_manifests, 4);
        CHECK_STREQ(d->manifests[2].ref_name, "localhost/x:1");
        CHECK_STREQ(d->manifests[2].image_name, "docker.io/library/x:1");
        /* linux/amd64: the entry without a variant wins over v3. */
        CHECK_EQ(oci_platform_parse("linux/amd64", &p), 0);
        CHECK_EQ(oci_index_choose(d, &p, &m), 0);
        CHECK_STREQ(m->digest, DC);
        CHECK_EQ(oci_platform_parse("linux/amd64/v3", &p), 0);
        CHECK_EQ(oci_index_choose(d, &p, &m), 0);
        CHECK_STREQ(m->digest, DB);
        CHECK_EQ(oci_platform_parse("linux/arm64", &p), 0);
        CHECK_EQ(oci_index_choose(d, &p, &m), 0);
        CHECK_STREQ(m->digest, DA);
        CHECK_EQ(oci_platform_parse("linux/s390x", &p), 0);
        CHECK_EQ(oci_index_choose(d, &p, &m), -ENOENT);

        oci_document_free(d);
        d = NULL;
        /* A Docker manifest list. */
        CHECK_EQ(parse("{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\","
                       " \"manifests\": [{\"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\","
                       " \"digest\": \"" DA "\", \"size\": 1, \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"}}]}",
                       "application/vnd.docker.distribution.manifest.list.v2+json", &d), 0);
        CHECK_EQ(d->type, OCI_MT_DOCKER_LIST);
        CHECK_EQ(oci_platform_parse("linux/amd64", &p), 0);
        CHECK_EQ(oci_index_choose(d, &p, &m), 0);

        char buf[64];
        oci_platform_default(&p);
        CHECK_STREQ(p.os, "linux");
#if defined(__x86_64__)
        CHECK_STREQ(oci_platform_format(&p, buf, sizeof(buf)), "linux/amd64");
#endif
        CHECK_EQ(oci_platform_parse("linux/arm64/v8", &p), 0);
        CHECK_STREQ(oci_platform_format(&p, buf, sizeof(buf)), "linux/arm64/v8");
        CHECK_EQ(oci_platform_parse("linux/arm64/v8/x", &p), -EINVAL);
        CHECK_EQ(oci_platform_parse("Linux/amd64", &p), -EINVAL);
        CHECK_EQ(oci_platform_parse("linux//amd64", &p), -EINVAL);
        CHECK_EQ(oci_platform_parse("", &p), -EINVAL);
        return 0;
}

static int test_config(void) {
        static const char *c =
                "{\"architecture\": \"amd64\", \"os\": \"linux\", \"created\": \"2024-01-02T03:04:05Z\","
                " \"config\": {\"Env\": [\"PATH=/usr/bin\", \"EMPTY=\"], \"Entrypoint\": [\"/bin/sh\", \"-c\"],"
                " \"Cmd\": null, \"WorkingDir\": \"/srv\", \"User\": \"app:app\", \"Labels\": {\"a\": \"b\"}},"
                " \"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"" DA "\", \"" DB "\"]},"
                " \"history\": [{\"created_by\": \"x\"}]}";
        _cleanup_(oci_config_freep) OciConfig *cfg = NULL;
        OciPlatform p;
        CHECK_EQ(oci_config_parse(c, strlen(c), &cfg, err, sizeof(err)), 0);
        CHECK_STREQ(cfg->os, "linux");
        CHECK_STREQ(cfg->architecture, "amd64");
        CHECK_STREQ(cfg->created, "2024-01-02T03:04:05Z");
        CHECK_U64(strv_length(cfg->env), 2);
        CHECK_STREQ(cfg->env[1], "EMPTY=");
        CHECK_STREQ(cfg->entrypoint[1], "-c");
        CHECK(cfg->cmd == NULL);
        CHECK_STREQ(cfg->working_dir, "/srv");
        CHECK_STREQ(cfg->user, "app:app");
        CHECK_U64(cfg->n_diff_ids, 2);
        CHECK_STREQ(cfg->diff_ids[1], DB);
        CHECK_EQ(oci_platform_parse("linux/amd64", &p), 0);
        CHECK(oci_config_matches(cfg, &p));
        CHECK_EQ(oci_platform_parse("linux/arm64", &p), 0);
        CHECK(!oci_config_matches(cfg, &p));

        static const struct {
                const char *json, *msg;
        } bad[] = {
                { "{\"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"sha256:00\"]}}", "not a sha256 digest" },
                { "{\"rootfs\": {\"type\": \"other\", \"diff_ids\": []}}", "not 'layers'" },
                { "{\"config\": {}}", "no rootfs" },
                { "{\"config\": {\"Env\": [\"NOEQUALS\"]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  "is not NAME=VALUE" },
                { "{\"config\": {\"Env\": [\"=x\"]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  "is not NAME=VALUE" },
                { "{\"config\": {\"Cmd\": \"/bin/sh\"}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  "not an array of strings" },
                { "{\"config\": {\"Cmd\": [1]}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  "not an array of strings" },
                { "{\"config\": {\"User\": 0}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  "not a string" },
                { "{\"config\": [], \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}", "not an object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                OciConfig *x = NULL;
                err[0] = '\0';
                int r = oci_config_parse(bad[i].json, strlen(bad[i].json), &x, err, sizeof(err));
                if (r >= 0 || x || !strstr(err, bad[i].msg)) {
                        printf("# %s: got %d '%s'\n", bad[i].json, r, err);
                        oci_config_free(x);
                        return -1;
                }
        }
        return 0;
}

static int test_layout_and_docker(void) {
        CHECK_EQ(oci_layout_check("{\"imageLayoutVersion\": \"1.0.0\"}", 31, err, sizeof(err)), 0);
        CHECK_EQ(oci_layout_check("{\"imageLayoutVersion\": \"2.0.0\"}", 31, err, sizeof(err)), -EOPNOTSUPP);

        static const char *m =
                "[{\"Config\": \"abc.json\", \"RepoTags\": [\"localhost/a:1\", \"b:2\"], \"Layers\": [\"x/layer.tar\", \"y.tar\"]},"
                " {\"Config\": \"blobs/sha256/def\", \"RepoTags\": null, \"Layers\": []}]";
        DockerArchiveImage *l = NULL;
        size_t n = 0;
        CHECK_EQ(docker_archive_manifest_parse(m, strlen(m), &l, &n, err, sizeof(err)), 0);
        CHECK_U64(n, 2);
        CHECK_STREQ(l[0].config, "abc.json");
        CHECK_STREQ(l[0].repo_tags[1], "b:2");
        CHECK_U64(l[0].n_layers, 2);
        CHECK_STREQ(l[0].layers[1], "y.tar");
        CHECK(l[1].repo_tags == NULL);
        CHECK_U64(l[1].n_layers, 0);
        docker_archive_images_free(l, n);
        static const char *const bad[] = { "{}", "[]", "[{\"Layers\": []}]", "[{\"Config\": \"c\", \"Layers\": \"x\"}]",
                                           "[{\"Config\": \"c\"}]", "[{\"Config\": \"c\", \"Layers\": [1]}]" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                l = NULL;
                if (docker_archive_manifest_parse(bad[i], strlen(bad[i]), &l, &n, err, sizeof(err)) >= 0 || l) {
                        printf("# accepted %s\n", bad[i]);
                        return -1;
                }
        }
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(manifest),
                TAP_TEST(manifest_refused),
                TAP_TEST(index),
                TAP_TEST(config),
                TAP_TEST(layout_and_docker),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
