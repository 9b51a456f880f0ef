/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI and Docker v2 schema 2 documents (see oci.h). Everything is checked before it is used: types,
 * digests (sha256 only), sizes, counts, nesting; a document that does not fit is refused with a message
 * naming the field. Library code: returns -errno, never logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "oci.h"
#include "ojson.h"

static const struct {
        const char *name;
        OciMediaType type;
} media_types[] = {
        { OCI_MT_STR_OCI_MANIFEST, OCI_MT_OCI_MANIFEST },
        { OCI_MT_STR_OCI_INDEX, OCI_MT_OCI_INDEX },
        { OCI_MT_STR_DOCKER_MANIFEST, OCI_MT_DOCKER_MANIFEST },
        { OCI_MT_STR_DOCKER_LIST, OCI_MT_DOCKER_LIST },
        { "application/vnd.docker.distribution.manifest.v1+json", OCI_MT_DOCKER_SCHEMA1 },
        { "application/vnd.docker.distribution.manifest.v1+prettyjws", OCI_MT_DOCKER_SCHEMA1 },
        { OCI_MT_STR_OCI_CONFIG, OCI_MT_OCI_CONFIG },
        { OCI_MT_STR_DOCKER_CONFIG, OCI_MT_DOCKER_CONFIG },
        { "application/vnd.oci.image.layer.v1.tar", OCI_MT_LAYER_TAR },
        { "application/vnd.oci.image.layer.v1.tar+gzip", OCI_MT_LAYER_GZIP },
        { "application/vnd.oci.image.layer.v1.tar+zstd", OCI_MT_LAYER_ZSTD },
        { "application/vnd.oci.image.layer.nondistributable.v1.tar", OCI_MT_LAYER_TAR },
        { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", OCI_MT_LAYER_GZIP },
        { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", OCI_MT_LAYER_ZSTD },
        { "application/vnd.docker.image.rootfs.diff.tar.gzip", OCI_MT_LAYER_GZIP },
        { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", OCI_MT_LAYER_GZIP },
};

OciMediaType oci_media_type_from_string(const char *s) {
        if (!s)
                return OCI_MT_UNKNOWN;
        for (size_t i = 0; i < ELEMENTSOF(media_types); i++)
                if (streq(s, media_types[i].name))
                        return media_types[i].type;
        return OCI_MT_UNKNOWN;
}

/* ------------------------------------------------------------------------------------------------ */
/* Platforms                                                                                        */

static bool platform_word_valid(const char *s, size_t n) {
        if (n == 0 || n >= sizeof(((OciPlatform *) NULL)->os))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' ||
                      s[i] == '.'))
                        return false;
        return true;
}

int oci_platform_parse(const char *s, OciPlatform *ret) {
        assert_return(s && ret, -EINVAL);
        OciPlatform p = {};
        char *fields[3] = { p.os, p.architecture, p.variant };
        size_t k = 0;
        for (const char *c = s;; k++) {
                size_t n = strcspn(c, "/");
                if (k >= 3 || !platform_word_valid(c, n))
                        return -EINVAL;
                memcpy(fields[k], c, n);
                if (!c[n])
                        break;
                c += n + 1;
        }
        if (k < 1)
                return -EINVAL;
        *ret = p;
        return 0;
}

void oci_platform_default(OciPlatform *ret) {
        const char *arch =
#if defined(__x86_64__)
                "amd64";
#elif defined(__aarch64__)
                "arm64";
#elif defined(__i386__)
                "386";
#elif defined(__arm__)
                "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                "ppc64le";
#elif defined(__s390x__)
                "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
                "riscv64";
#else
                "unknown";
#endif
        *ret = (OciPlatform) {};
        strcpy(ret->os, "linux");
        strcpy(ret->architecture, arch);
}

const char *oci_platform_format(const OciPlatform *p, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s%s%s", p->os, p->architecture, *p->variant ? "/" : "", p->variant);
        return buf;
}

/* ------------------------------------------------------------------------------------------------ */
/* Descriptors, manifests, indexes                                                                  */

static void descriptor_done(OciDescriptor *d) {
        free(d->media_type);
        free(d->os);
        free(d->architecture);
        free(d->variant);
        free(d->ref_name);
        free(d->image_name);
        *d = (OciDescriptor) {};
}

OciDocument *oci_document_free(OciDocument *d) {
        if (!d)
                return NULL;
        descriptor_done(&d->config);
        for (size_t i = 0; i < d->n_layers; i++)
                descriptor_done(&d->layers[i]);
        free(d->layers);
        for (size_t i = 0; i < d->n_manifests; i++)
                descriptor_done(&d->manifests[i]);
        free(d->manifests);
        free(d);
        return NULL;
}

/* A short, printable copy of an outside string for messages. */
static const char *shown(const char *s, char *buf, size_t size) {
        size_t o = 0;
        if (!s)
                return "(none)";
        for (const char *p = s; *p && o + 4 < size; p++)
                buf[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        if (s[o] && o + 4 >= size)
                memcpy(buf + o, "...", 3), o += 3;
        buf[o] = '\0';
        return buf;
}

static int dup_string(const json_t *obj, const char *key, char **ret) {
        const char *s = ojson_string(obj, key);
        if (!s) {
                *ret = NULL;
                return 0;
        }
        if (strlen(s) > OCI_MAX_STRING)
                return -E2BIG;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* Descriptor J (WHAT names it in messages) into D. */
static int descriptor_parse(const json_t *j, const char *what, OciDescriptor *d, char *err, size_t errlen) {
        char b[128];
        if (!json_is_object(j))
                return errbuf_set(err, errlen, -EBADMSG, "%s: not an object", what);
        const char *mt = ojson_string(j, "mediaType");
        if (!mt)
                return errbuf_set(err, errlen, -EBADMSG, "%s: no mediaType", what);
        const char *digest = ojson_string(j, "digest");
        if (!digest)
                return errbuf_set(err, errlen, -EBADMSG, "%s: no digest", what);
        if (!digest_is_valid(digest))
                return errbuf_set(err, errlen, -EOPNOTSUPP,
                                  "%s: unsupported or invalid digest '%s' (only sha256)", what,
                                  shown(digest, b, sizeof(b)));
        int r = ojson_u64(j, "size", &d->size);
        if (r < 0)
                return errbuf_set(err, errlen, -EBADMSG, "%s: %s size", what,
                                  r == -ENOENT ? "no" : "invalid");
        strcpy(d->digest, digest);
        d->type = oci_media_type_from_string(mt);
        d->media_type = strdup(mt);
        if (!d->media_type)
                return -ENOMEM;

        json_t *p = json_object_get(j, "platform");
        if (p && !json_is_object(p))
                return errbuf_set(err, errlen, -EBADMSG, "%s: platform is not an object", what);
        if (p && ((r = dup_string(p, "os", &d->os)) < 0 || (r = dup_string(p, "architecture", &d->architecture)) < 0 ||
                  (r = dup_string(p, "variant", &d->variant)) < 0))
                return errbuf_set(err, errlen, r, "%s: invalid platform", what);
        json_t *a = json_object_get(j, "annotations");
        if (a && !json_is_object(a))
                return errbuf_set(err, errlen, -EBADMSG, "%s: annotations is not an object", what);
        if (a && ((r = dup_string(a, "org.opencontainers.image.ref.name", &d->ref_name)) < 0 ||
                  (r = dup_string(a, "io.containerd.image.name", &d->image_name)) < 0))
                return errbuf_set(err, errlen, r, "%s: invalid annotations", what);
        return 0;
}

/* "application/json; charset=utf-8" -> "application/json" into BUF; "" for generic or missing types. */
static const char *transport_type_clean(const char *t, char *buf, size_t size) {
        if (!t)
                return "";
        size_t n = strcspn(t, "; \t");
        if (n >= size)
                n = size - 1;
        memcpy(buf, t, n);
        buf[n] = '\0';
        if (streq(buf, "application/json") || streq(buf, "application/octet-stream") || streq(buf, "text/plain") ||
            streq(buf, "binary/octet-stream"))
                return "";
        return buf;
}

int oci_document_parse(const char *buf, size_t len, const char *transport_type, OciDocument **ret, char *err,
                       size_t errlen) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char tb[256], b[128];
        uint64_t version;

        assert_return(ret, -EINVAL);
        int r = ojson_parse_object(buf, len, OCI_MAX_DOCUMENT_SIZE, OCI_MAX_DEPTH, &j, err, errlen);
        if (r < 0)
                return r;

        const char *tt = transport_type_clean(transport_type, tb, sizeof(tb));
        const char *mt = ojson_string(j, "mediaType");
        if (json_object_get(j, "mediaType") && !mt)
                return errbuf_set(err, errlen, -EBADMSG, "mediaType is not a string");
        r = ojson_u64(j, "schemaVersion", &version);
        if (r == -EBADMSG)
                return errbuf_set(err, errlen, r, "invalid schemaVersion");
        OciMediaType type = oci_media_type_from_string(mt ?: tt);
        if (type == OCI_MT_DOCKER_SCHEMA1 || (r >= 0 && version == 1))
                return errbuf_set(err, errlen, -EOPNOTSUPP,
                                  "Docker schema 1 manifests are not supported (deprecated "
                                  "since 2017): push the image again with a current tool");
        if (r < 0 || version != 2)
                return errbuf_set(err, errlen, -EBADMSG, "schemaVersion is %s, not 2",
                                  r < 0 ? "missing" : "not 2");
        if (mt && *tt && !streq(mt, tt))
                return errbuf_set(err, errlen, -EBADMSG,
                                  "mediaType '%s' differs from the type it was served as '%s'",
                                  shown(mt, b, sizeof(b)), tt);
        if (!mt && !*tt) {
                /* An OCI document may omit mediaType (index.json of a layout often does). */
                if (json_object_get(j, "manifests"))
                        type = OCI_MT_OCI_INDEX;
                else if (json_object_get(j, "config") && json_object_get(j, "layers"))
                        type = OCI_MT_OCI_MANIFEST;
        }
        if (!oci_mt_is_manifest(type) && !oci_mt_is_index(type))
                return errbuf_set(err, errlen, -EOPNOTSUPP,
                                  "not an image manifest or index (media type '%s')",
                                  shown(mt ?: tt, b, sizeof(b)));

        _cleanup_(oci_document_freep) OciDocument *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->type = type;

        if (oci_mt_is_index(type)) {
                json_t *m = json_object_get(j, "manifests");
                if (!json_is_array(m))
                        return errbuf_set(err, errlen, -EBADMSG, "index without a manifests array");
                size_t n = json_array_size(m);
                if (n > OCI_MAX_INDEX_ENTRIES)
                        return errbuf_set(err, errlen, -E2BIG,
                                          "index of %zu entries exceeds the limit of %d", n,
                                          OCI_MAX_INDEX_ENTRIES);
                d->manifests = calloc(n ?: 1, sizeof(OciDescriptor));
                if (!d->manifests)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        char what[64];
                        snprintf(what, sizeof(what), "manifests[%zu]", i);
                        d->n_manifests = i + 1;
                        r = descriptor_parse(json_array_get(m, i), what, &d->manifests[i], err, errlen);
                        if (r < 0)
                                return r;
                        if (d->manifests[i].size > OCI_MAX_DOCUMENT_SIZE)
                                return errbuf_set(err, errlen, -E2BIG,
                                                  "%s: size %llu exceeds the limit of %llu", what,
                                                  (unsigned long long) d->manifests[i].size,
                                                  (unsigned long long) OCI_MAX_DOCUMENT_SIZE);
                }
                *ret = TAKE_PTR(d);
                return 0;
        }

        r = descriptor_parse(json_object_get(j, "config"), "config", &d->config, err, errlen);
        if (r < 0)
                return r;
        if (d->config.type != OCI_MT_OCI_CONFIG && d->config.type != OCI_MT_DOCKER_CONFIG)
                return errbuf_set(err, errlen, -EOPNOTSUPP, "not a container image: config media type '%s'",
                                  shown(d->config.media_type, b, sizeof(b)));
        if (d->config.size > OCI_MAX_DOCUMENT_SIZE)
                return errbuf_set(err, errlen, -E2BIG, "config size %llu exceeds the limit of %llu",
                                  (unsigned long long) d->config.size,
                                  (unsigned long long) OCI_MAX_DOCUMENT_SIZE);
        json_t *l = json_object_get(j, "layers");
        if (!json_is_array(l))
                return errbuf_set(err, errlen, -EBADMSG, "manifest without a layers array");
        size_t n = json_array_size(l);
        if (n > OCI_MAX_LAYERS)
                return errbuf_set(err, errlen, -E2BIG, "image of %zu layers exceeds the limit of %d", n,
                                  OCI_MAX_LAYERS);
        d->layers = calloc(n ?: 1, sizeof(OciDescriptor));
        if (!d->layers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char what[64];
                snprintf(what, sizeof(what), "layers[%zu]", i);
                d->n_layers = i + 1;
                r = descriptor_parse(json_array_get(l, i), what, &d->layers[i], err, errlen);
                if (r < 0)
                        return r;
                if (!oci_mt_is_layer(d->layers[i].type))
                        return errbuf_set(err, errlen, -EOPNOTSUPP, "%s: unsupported layer media type '%s'",
                                          what, shown(d->layers[i].media_type, b, sizeof(b)));
        }
        *ret = TAKE_PTR(d);
        return 0;
}

static bool str_eq(const char *a, const char *b) {
        return streq(a ?: "", b ?: "");
}

int oci_index_choose(const OciDocument *d, const OciPlatform *p, const OciDescriptor **ret) {
        const OciDescriptor *any_variant = NULL;

        assert_return(d && p && ret && oci_mt_is_index(d->type), -EINVAL);
        for (size_t i = 0; i < d->n_manifests; i++) {
                const OciDescriptor *m = &d->manifests[i];
                if (!oci_mt_is_manifest(m->type) && !oci_mt_is_index(m->type))
                        continue;
                if (!str_eq(m->os, p->os) || !str_eq(m->architecture, p->architecture))
                        continue;
                if (*p->variant) {
                        if (str_eq(m->variant, p->variant)) {
                                *ret = m;
                                return 0;
                        }
                        continue;
                }
                if (!m->variant || !*m->variant) {
                        *ret = m;
                        return 0;
                }
                if (!any_variant)
                        any_variant = m;
        }
        if (!any_variant)
                return -ENOENT;
        *ret = any_variant;
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Configs                                                                                          */

OciConfig *oci_config_free(OciConfig *c) {
        if (!c)
                return NULL;
        free(c->os);
        free(c->architecture);
        free(c->variant);
        free(c->created);
        strv_free(c->env);
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        free(c->working_dir);
        free(c->user);
        free(c->diff_ids);
        free(c);
        return NULL;
}

static int strv_field(const json_t *obj, const char *key, char ***ret, char *err, size_t errlen) {
        int r = ojson_strv(obj, key, OCI_MAX_STRV, OCI_MAX_STRING, ret);
        if (r == -E2BIG)
                return errbuf_set(err, errlen, r,
                                  "config %s: more than %d strings or a string over %llu bytes", key,
                                  OCI_MAX_STRV, (unsigned long long) OCI_MAX_STRING);
        if (r < 0)
                return errbuf_set(err, errlen, r, "config %s: not an array of strings", key);
        return 0;
}

int oci_config_parse(const char *buf, size_t len, OciConfig **ret, char *err, size_t errlen) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char b[128];

        assert_return(ret, -EINVAL);
        int r = ojson_parse_object(buf, len, OCI_MAX_DOCUMENT_SIZE, OCI_MAX_DEPTH, &j, err, errlen);
        if (r < 0)
                return r;
        _cleanup_(oci_config_freep) OciConfig *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if ((r = dup_string(j, "os", &c->os)) < 0 || (r = dup_string(j, "architecture", &c->architecture)) < 0 ||
            (r = dup_string(j, "variant", &c->variant)) < 0 || (r = dup_string(j, "created", &c->created)) < 0)
                return errbuf_set(err, errlen, r, "config: invalid os, architecture, variant or created");

        json_t *cfg = json_object_get(j, "config");
        if (cfg && !json_is_null(cfg)) {
                if (!json_is_object(cfg))
                        return errbuf_set(err, errlen, -EBADMSG, "config: 'config' is not an object");
                if ((r = strv_field(cfg, "Env", &c->env, err, errlen)) < 0 ||
                    (r = strv_field(cfg, "Entrypoint", &c->entrypoint, err, errlen)) < 0 ||
                    (r = strv_field(cfg, "Cmd", &c->cmd, err, errlen)) < 0)
                        return r;
                for (char **e = c->env; e && *e; e++)
                        if (!strchr(*e, '=') || **e == '=')
                                return errbuf_set(err, errlen, -EBADMSG,
                                                  "config Env: '%s' is not NAME=VALUE",
                                                  shown(*e, b, sizeof(b)));
                const char *w = ojson_string(cfg, "WorkingDir");
                const char *u = ojson_string(cfg, "User");
                if ((json_object_get(cfg, "WorkingDir") && !w && !json_is_null(json_object_get(cfg, "WorkingDir"))) ||
                    (json_object_get(cfg, "User") && !u && !json_is_null(json_object_get(cfg, "User"))))
                        return errbuf_set(err, errlen, -EBADMSG,
                                          "config: WorkingDir or User is not a string");
                if (w && strlen(w) >= 4096)
                        return errbuf_set(err, errlen, -E2BIG, "config WorkingDir: longer than 4095 bytes");
                if (u && strlen(u) > 256)
                        return errbuf_set(err, errlen, -E2BIG, "config User: longer than 256 bytes");
                if ((w && *w && !(c->working_dir = strdup(w))) || (u && *u && !(c->user = strdup(u))))
                        return -ENOMEM;
        }

        json_t *rootfs = json_object_get(j, "rootfs");
        if (!json_is_object(rootfs))
                return errbuf_set(err, errlen, -EBADMSG, "config: no rootfs object");
        const char *type = ojson_string(rootfs, "type");
        if (!type || !streq(type, "layers"))
                return errbuf_set(err, errlen, -EBADMSG, "config: rootfs type is '%s', not 'layers'",
                                  shown(type, b, sizeof(b)));
        json_t *ids = json_object_get(rootfs, "diff_ids");
        if (!json_is_array(ids))
                return errbuf_set(err, errlen, -EBADMSG, "config: rootfs.diff_ids is not an array");
        size_t n = json_array_size(ids);
        if (n > OCI_MAX_LAYERS)
                return errbuf_set(err, errlen, -E2BIG, "config: %zu layers exceed the limit of %d", n,
                                  OCI_MAX_LAYERS);
        c->diff_ids = calloc(n ?: 1, DIGEST_STRING_MAX);
        if (!c->diff_ids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(ids, i);
                if (!json_is_string(s) || !digest_is_valid(json_string_value(s)))
                        return errbuf_set(err, errlen, -EBADMSG,
                                          "config: rootfs.diff_ids[%zu] is not a sha256 digest", i);
                strcpy(c->diff_ids[i], json_string_value(s));
        }
        c->n_diff_ids = n;
        *ret = TAKE_PTR(c);
        return 0;
}

bool oci_config_matches(const OciConfig *c, const OciPlatform *p) {
        if (!str_eq(c->os, p->os) || !str_eq(c->architecture, p->architecture))
                return false;
        return !*p->variant || !c->variant || !*c->variant || streq(c->variant, p->variant);
}

int oci_layout_check(const char *buf, size_t len, char *err, size_t errlen) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char b[64];
        int r = ojson_parse_object(buf, len, 64 * 1024, 8, &j, err, errlen);
        if (r < 0)
                return r;
        const char *v = ojson_string(j, "imageLayoutVersion");
        if (!v || !startswith(v, "1."))
                return errbuf_set(err, errlen, -EOPNOTSUPP, "unsupported image layout version '%s' (1.x)",
                                  shown(v, b, sizeof(b)));
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* docker save                                                                                      */

void docker_archive_images_free(DockerArchiveImage *l, size_t n) {
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].config);
                strv_free(l[i].repo_tags);
                strv_free(l[i].layers);
        }
        free(l);
}

int docker_archive_manifest_parse(const char *buf, size_t len, DockerArchiveImage **ret, size_t *ret_n, char *err,
                                  size_t errlen) {
        json_error_t e;

        assert_return(ret && ret_n, -EINVAL);
        if (len > OCI_MAX_DOCUMENT_SIZE)
                return errbuf_set(err, errlen, -E2BIG,
                                  "manifest.json of %zu bytes exceeds the limit of %llu", len,
                                  (unsigned long long) OCI_MAX_DOCUMENT_SIZE);
        if (!ojson_depth_ok(buf, len, OCI_MAX_DEPTH))
                return errbuf_set(err, errlen, -E2BIG, "manifest.json nested deeper than %d levels",
                                  OCI_MAX_DEPTH);
        _cleanup_(json_decrefp) json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return errbuf_set(err, errlen, -EBADMSG,
                                  "manifest.json: invalid JSON at line %d, column %d: %s", e.line,
                                  e.column, e.text);
        if (!json_is_array(j))
                return errbuf_set(err, errlen, -EBADMSG, "manifest.json is not an array");
        size_t n = json_array_size(j);
        if (n == 0)
                return errbuf_set(err, errlen, -EBADMSG, "manifest.json lists no image");
        if (n > OCI_MAX_INDEX_ENTRIES)
                return errbuf_set(err, errlen, -E2BIG, "manifest.json lists %zu images, more than %d", n,
                                  OCI_MAX_INDEX_ENTRIES);
        DockerArchiveImage *l = calloc(n, sizeof(*l));
        if (!l)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                json_t *o = json_array_get(j, i);
                const char *config = json_is_object(o) ? ojson_string(o, "Config") : NULL;
                if (!config || !*config || strlen(config) >= 4096) {
                        r = errbuf_set(err, errlen, -EBADMSG, "manifest.json[%zu]: no valid Config", i);
                        break;
                }
                if (!(l[i].config = strdup(config))) {
                        r = -ENOMEM;
                        break;
                }
                r = ojson_strv(o, "RepoTags", OCI_MAX_INDEX_ENTRIES, 1024, &l[i].repo_tags);
                if (r < 0) {
                        r = errbuf_set(err, errlen, r, "manifest.json[%zu]: invalid RepoTags", i);
                        break;
                }
                r = ojson_strv(o, "Layers", OCI_MAX_LAYERS, 4096, &l[i].layers);
                if (r < 0 || !l[i].layers) {
                        r = errbuf_set(err, errlen, r == -E2BIG ? r : -EBADMSG,
                                       "manifest.json[%zu]: Layers %s", i,
                                       r == -E2BIG ? "exceed the limit of layers or of 4096 bytes a path"
                                                   : "is not an array of member paths");
                        break;
                }
                l[i].n_layers = strv_length(l[i].layers);
        }
        if (r < 0) {
                docker_archive_images_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}
